"""The backend contract on the layers that flask_fs.jobs puts in front of a backend: the promotion
cache (every storage, once jobs are set up) and the mirror (FS_JOBS_MIRROR), on local disk and S3."""

from __future__ import annotations

import pytest

from flask_fs import ALL, Storage, init_app, jobs
from flask_fs.backends.layered import MirrorBackend, PromotedBackend
from flask_fs.testing import BackendContract
from tests.backends.conftest import backend_settings


class _Layered(BackendContract):
    mirror = False

    def make_app(self, backend_config, tmp_path):
        config = {**backend_config, "FS_JOBS_MIRROR": {"files": "copy"}} if self.mirror else backend_config
        return super().make_app(config, tmp_path)

    def layer(self, app):
        files = Storage("files", ALL)
        init_app(app, files, Storage("copy", ALL))
        jobs.init_app(app)
        return files

    @pytest.fixture
    def storage(self, backend_app):
        files = self.layer(backend_app)
        with backend_app.app_context():
            assert isinstance(files.backend, PromotedBackend)
            assert isinstance(files.backend.main, MirrorBackend) == self.mirror
            yield files
            for name in list(files.list_files()):
                files.delete(name)
        jobs.jobs_of(backend_app).close()

    @pytest.fixture
    def second_backend(self, backend_config, tmp_path, storage):
        app = self.make_app(backend_config, tmp_path)
        files = self.layer(app)
        with app.app_context():
            return files.backend


class TestPromotedLocal(_Layered):
    @pytest.fixture
    def backend_config(self):
        return {"FS_BACKEND": "local"}


class TestMirroredLocal(_Layered):
    mirror = True

    @pytest.fixture
    def backend_config(self):
        return {"FS_BACKEND": "local"}


class TestPromotedS3(_Layered):
    memory_bound = None  # moto runs in this process

    @pytest.fixture
    def backend_config(self, request):
        return {"FS_BACKEND": "local", **backend_settings(request, "s3-moto")}
