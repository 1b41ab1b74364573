"""A small app keeping avatars on S3 in production."""

from flask import Flask, request

import flask_fs as fs

avatars = fs.Storage("avatars", fs.IMAGES)


def create_app(**config):
    app = Flask(__name__)
    app.config.update(
        AVATARS_FS_BACKEND="s3",
        AVATARS_FS_BUCKET="avatars",
        FS_S3_ENDPOINT="https://s3.example.com",
        **config,
    )
    fs.init_app(app, avatars)

    @app.post("/avatar/<user>")
    def upload(user):
        name = avatars.save(request.files["picture"], prefix=user)
        return {"url": avatars.url(name)}, 201

    return app
