import pytest
from app import create_app

pytest_plugins = ["flask_fs.testing"]  # provides the fs_memory fixture


@pytest.fixture
def app():
    return create_app(TESTING=True)
