"""Several models in one service: requests pick one by name (`model`), the first of each kind
answers those that name none, an unknown name is refused with the names served, and two
exports of one name are refused at start, before anything loads. Also how `lipseq serve`
turns its flags into named exports."""

import shutil

import pytest
from absl import flags
from absl.app import UsageError
from starlette.websockets import WebSocketDisconnect

from pipelines.artifacts.exports import resolve_export

pytestmark = pytest.mark.skipif(
    not resolve_export("grid_s1").is_dir(), reason="no grid_s1 release in models/releases"
)


class StubTranslation:
    """A translation model that says which export it stands for: loading a real one needs a
    trained export (tests/pipelines/tasks builds one), and what is tested here is routing."""

    def __init__(self, export, name=None):
        self.export, self.name = export, name

    def describe(self):
        return {"name": self.name, "task": "translation", "modes": ["beam"]}

    def translate(self, texts, mode):
        return {"text": [f"{self.export}: {t}" for t in texts], "scores": [0.0] * len(texts)}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(client, name of the copy): grid_s1 under its release name and a copy of its export
    folder under another name. The two read alike; the routing is what is tested, and the
    copy is loaded and warmed up as a model of its own."""
    from fastapi.testclient import TestClient

    import pipelines.serving.service as service

    copy = tmp_path_factory.mktemp("exports") / "grid_s1_copy"
    shutil.copytree(resolve_export("grid_s1"), copy)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service, "TranslationModel", StubTranslation)
        app = service.create_app(["grid_s1", copy], ["runs/en_de/export", "runs/en_fr/export"])
    with TestClient(app) as client:
        yield client, copy.name


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory):
    from data_prep.synthetic.faces import write_synthetic_corpus

    root = tmp_path_factory.mktemp("media")
    clip = write_synthetic_corpus(root, 1, seed=5)["clips"][0]["video"]
    return ("face.mp4", open(clip, "rb").read())


def transcribe(client, clip, **fields):
    return client.post(
        "/v1/transcribe", files={"video": clip}, data={"mode": "ctc_greedy"} | fields
    )


def test_models_lists_every_model_with_the_first_of_each_kind_as_default(served):
    client, copy = served
    listed = client.get("/v1/models").json()["models"]
    assert [(m["name"], m["task"], m["default"]) for m in listed] == [
        ("grid_s1", "lipreading", True),
        (copy, "lipreading", False),
        ("en_de", "translation", True),
        ("en_fr", "translation", False),
    ]
    assert all("ctc_greedy" in m["modes"] for m in listed[:2])
    # One export, one load: the default reader is the service's first.
    state = client.app.state
    assert state.reader is state.readers["grid_s1"]
    assert state.readers[copy].export is not state.reader.export


def test_an_upload_is_read_by_the_model_it_names_and_by_the_default_without_one(served, face_clip):
    client, copy = served
    answers = {}
    for name in ("grid_s1", copy, None):
        fields = {"model": name} if name else {}
        response = transcribe(client, face_clip, **fields)
        assert response.status_code == 200, response.text
        answers[name] = response.json()
    assert [answers[n]["model"] for n in ("grid_s1", copy, None)] == ["grid_s1", copy, "grid_s1"]
    # The copy is the same network: the same reading, from a model of another name.
    assert answers[copy]["text"] == answers["grid_s1"]["text"] and answers[copy]["text"]


def test_an_unknown_model_is_refused_with_the_names_served(served, face_clip):
    client, copy = served
    response = transcribe(client, face_clip, model="grid_s2")
    assert response.status_code == 404
    body = response.json()
    assert (body["error"], body["models"]) == ("unknown_model", ["grid_s1", copy])
    assert "grid_s2" in body["detail"] and copy in body["detail"]
    answer = client.post("/v1/translate", json={"text": "a", "model": "grid_s1"})
    assert answer.status_code == 404 and answer.json()["models"] == ["en_de", "en_fr"]


def test_a_translation_is_made_by_the_model_it_names(served):
    client, _ = served
    picked = client.post("/v1/translate", json={"text": "hallo", "model": "en_fr"}).json()
    assert (picked["model"], picked["translations"]) == ("en_fr", ["runs/en_fr/export: hallo"])
    default = client.post("/v1/translate", json={"text": "hallo"}).json()
    assert (default["model"], default["translations"]) == ("en_de", ["runs/en_de/export: hallo"])


def test_live_picks_its_model_and_refuses_an_unknown_one(served):
    client, copy = served
    with client.websocket_connect(f"/v1/live?model={copy}") as socket:
        assert socket.receive_json()["model"] == copy
    with client.websocket_connect("/v1/live?model=grid_s2") as socket:
        refused = socket.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert (refused["error"], refused["models"]) == ("unknown_model", ["grid_s1", copy])
    assert closed.value.code == 1008


def test_two_exports_of_one_name_are_refused_before_anything_loads(tmp_path, monkeypatch):
    import pipelines.serving.service as service

    def no_load(*_args, **_kwargs):
        raise AssertionError("an export was loaded before the names were checked")

    monkeypatch.setattr(service, "LipReadingExport", no_load)
    other = tmp_path / "grid_s1" / "export"  # a workdir named grid_s1: the same name
    with pytest.raises(ValueError) as clash:
        service.create_app(["grid_s1", other])
    message = str(clash.value)
    assert "\n" not in message and "'grid_s1'" in message and str(other) in message


def parse_serve(*arguments) -> flags.FlagValues:
    from pipelines.cli import serve

    values = flags.FlagValues()
    serve.define_flags(values)
    values(["lipseq", *arguments])
    return values


def test_serve_flags_name_each_export_in_the_order_given(tmp_path):
    from pipelines.cli.serve import named_exports

    # One --model reads as it always has.
    assert named_exports(parse_serve("--model=grid_s1")) == ({"grid_s1": "grid_s1"}, {})
    copy, translation = tmp_path / "s2", tmp_path / "en_de" / "export"
    flags_given = parse_serve(
        "--model=grid_s1", f"--model={copy}", f"--translation_model={translation}"
    )
    assert named_exports(flags_given) == (
        {"grid_s1": "grid_s1", "s2": str(copy)},
        {"en_de": str(translation)},
    )


def test_serve_flags_refuse_a_clash_or_nothing_to_serve(tmp_path):
    from pipelines.cli.serve import named_exports

    twin = tmp_path / "grid_s1"
    with pytest.raises(UsageError, match=f"two models named 'grid_s1': grid_s1 and {twin};"):
        named_exports(parse_serve("--model=grid_s1", f"--translation_model={twin}"))
    with pytest.raises(UsageError, match="give --model, --translation_model, or both"):
        named_exports(parse_serve())
