"""Shared fixtures: a tiny random FaceInsight built offline, its Hub-ready folder, and real face photos."""

import pytest
import torch
from PIL import Image

from faceinsight.hub.build import build_tiny
from faceinsight.hub.export import save_model_folder
from helpers import chat_prompt


@pytest.fixture(scope="session")
def tiny():
    """(model, processor) of the tiny preset; tests must not modify them (build their own to train)."""
    return build_tiny(seed=0)


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory, tiny):
    model, processor = tiny
    return save_model_folder(model, processor, tmp_path_factory.mktemp("tiny_faceinsight"))


@pytest.fixture(scope="session")
def face_image():
    """The astronaut portrait (public domain, shipped inside scikit-image), cropped to the face."""
    from skimage.data import astronaut

    return Image.fromarray(astronaut()).crop((140, 20, 340, 220))


@pytest.fixture(scope="session")
def lfw_faces():
    """A few small LFW faces (grayscale floats in [0, 1]) shipped inside scikit-image."""
    from skimage.data import lfw_subset

    return [Image.fromarray((face * 255).astype("uint8")) for face in lfw_subset()[:4]]


@pytest.fixture
def make_inputs(tiny, face_image):
    """Model inputs for a batch of chat prompts, one face image each."""
    _, processor = tiny

    def make(questions=("Is this person smiling?",), **kwargs):
        prompts = [chat_prompt(processor, q) for q in questions]
        images = [face_image.rotate(7 * i) for i in range(len(prompts))]
        return processor(images=images, text=prompts, padding=True, return_tensors="pt", **kwargs)

    return make


torch.set_num_threads(2)
