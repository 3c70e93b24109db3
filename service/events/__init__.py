"""Server-Sent Events of a job: its history and status as they change."""
