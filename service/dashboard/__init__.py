"""The dashboard at `/`: a static single page (plain HTML, CSS and JS modules) and Plotly."""
