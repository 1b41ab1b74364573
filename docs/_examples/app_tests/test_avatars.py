import io

from app import avatars


def test_upload_stores_the_picture(fs_memory):
    client = fs_memory.test_client()
    picture = (io.BytesIO(b"\x89PNG\r\n\x1a\n..."), "me.png")
    response = client.post("/avatar/alice", data={"picture": picture})
    assert response.status_code == 201
    with fs_memory.app_context():
        assert list(avatars.list_files()) == ["alice/me.png"]
        assert avatars.read("alice/me.png") == b"\x89PNG\r\n\x1a\n..."


def test_each_test_starts_with_empty_storages(fs_memory):
    with fs_memory.app_context():
        assert list(avatars.list_files()) == []
        assert avatars.config["backend"] == "memory"
