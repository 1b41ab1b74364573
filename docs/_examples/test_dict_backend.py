"""The contract suite on the dict backend, as its author runs it: ``pytest test_dict_backend.py``."""

import uuid

import pytest

from flask_fs.testing import BackendContract


class TestDictBackend(BackendContract):
    holds_files_in_memory = True  # its reads are measured, not its saves

    @pytest.fixture
    def backend_config(self):
        # A bucket per test: each test starts empty, and its second app shares the bucket.
        return {"FS_BACKEND": "dict", "FS_DICT_BUCKET": f"test-{uuid.uuid4().hex}"}
