from tests.service.conftest import client, drain

__all__ = ["client", "drain"]
