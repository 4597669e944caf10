"""FaceInsight image processor: any image -> normalised RGB tensor; optional parsing label maps -> resized label maps.

Uploaded to the Hub as remote code: imports only `torch`, `transformers` (and Pillow, which transformers' image
pipelines need anyway, behind a guarded import).
"""

import os
import warnings

import torch
import torch.nn.functional as F
from transformers.image_processing_base import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor
from transformers.processing_utils import ImagesKwargs

try:  # Pillow is what every transformers image pipeline runs on; guarded so remote-code import checks pass
    from PIL import Image, ImageOps, UnidentifiedImageError
except ImportError:  # pragma: no cover
    Image = ImageOps = UnidentifiedImageError = None

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
PARSE_THIS_IMAGE = -1  # a map of it asks the model's parser for the image (schema_faceinsight.py: the same name)
MISSING_PARSING_LABEL = PARSE_THIS_IMAGE  # the earlier name
# Our own cap on the pixels of an image file, checked from its header before anything is decoded: a small file can
# declare a huge image (a 118-byte PNG of 13000 x 13000). 40 megapixels is a 7300 x 5500 photo; decoding one takes
# about 120 MB as RGB. Set `max_image_pixels` on the image processor (saved with it) to change it.
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000


def open_image(path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, what: str | None = None) -> "Image.Image":
    """Decode the image file `path`, refusing (ValueError naming the file) one whose header declares more than
    `max_pixels`, a decompression bomb, truncated or corrupt data, or a file that is not an image. `what` names
    it in errors (default: "image PATH")."""
    name = os.fspath(path)
    what = what or f"image {name}"
    try:
        with warnings.catch_warnings():  # Pillow's own warning threshold; ours is the cap below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(name)  # reads the header only
        with opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise ValueError(
                    f"{what} declares {width}x{height} = {width * height / 1e6:.0f} megapixels, over the cap of "
                    f"{max_pixels / 1e6:.0f} (max_image_pixels); refused before decoding"
                )
            opened.load()
            return opened.copy()
    except FileNotFoundError:
        raise FileNotFoundError(f"{what}: no such file") from None
    except Image.DecompressionBombError as error:
        raise ValueError(f"{what} is a decompression bomb: {error}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{what} is not a readable image (corrupt or truncated): {error}") from None


class FaceInsightImagesKwargs(ImagesKwargs, total=False):
    """What `FaceInsightProcessor(...)` routes to this image processor beside the images (ProcessorMixin reads it)."""

    parsing_maps: list | None


class FaceInsightImageProcessor(BaseImageProcessor):
    """Converts images of any PIL mode (grayscale, RGBA, palette, CMYK, 16-bit, float) to RGB, honours EXIF
    orientation, resizes to `size` x `size` and normalises. Caller-supplied parsing maps (label indices
    0..num_parsing_labels-1) are resized with nearest-neighbour so labels are never blended.

    Accepted images: PIL images, file paths, arrays/tensors of shape (H, W), (H, W, C) or (C, H, W).
    """

    model_input_names = ["pixel_values", "parsing_maps"]
    valid_kwargs = FaceInsightImagesKwargs

    def __init__(
        self,
        size: int = 224,
        image_mean: list[float] | tuple[float, ...] = (0.5, 0.5, 0.5),
        image_std: list[float] | tuple[float, ...] = (0.5, 0.5, 0.5),
        num_parsing_labels: int = 19,
        alpha_background: tuple[int, int, int] = (255, 255, 255),
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.max_image_pixels = int(max_image_pixels)
        self.size = int(size)
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.num_parsing_labels = int(num_parsing_labels)
        self.alpha_background = tuple(alpha_background)

    def fetch_images(self, images):
        """File paths opened within the pixel cap (`open_image`); URLs fetched as transformers fetches them; images
        and arrays as they are. (Called by the processor before it counts images.)"""
        if isinstance(images, (list, tuple)):
            return [self.fetch_images(image) for image in images]
        if isinstance(images, str) and images.startswith(("http://", "https://")):
            return super().fetch_images(images)
        if isinstance(images, (str, os.PathLike)):
            return open_image(images, self.max_image_pixels)
        return images

    # -------------------------------------------------------------------------------------------------------------
    def preprocess(self, images, parsing_maps=None, return_tensors="pt", **kwargs) -> BatchFeature:
        """Images (and optional parsing maps) -> `pixel_values` (N, 3, size, size), normalised, and `parsing_maps`
        (N, size, size) of label indices. (`__call__` is BaseImageProcessor's, which calls this.)"""
        images = flatten_images(images)
        rgb_images = [self.to_rgb(image, index) for index, image in enumerate(images)]
        size = (self.size, self.size)
        resized = [
            i if i.size == size else i.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0) for i in rgb_images
        ]
        pixels = torch.stack([torch.frombuffer(bytearray(i.tobytes()), dtype=torch.uint8) for i in resized])
        pixels = pixels.view(-1, *size, 3).permute(0, 3, 1, 2).float() / 255.0
        mean, std = torch.tensor(self.image_mean).view(1, 3, 1, 1), torch.tensor(self.image_std).view(1, 3, 1, 1)
        data = {"pixel_values": (pixels - mean) / std}
        if parsing_maps is not None:
            maps = flatten_images(parsing_maps)
            if len(maps) != len(rgb_images):
                raise ValueError(
                    f"got {len(maps)} parsing maps for {len(rgb_images)} images; pass one map per image "
                    "(None for an image the model should parse itself)"
                )
            data["parsing_maps"] = torch.stack(
                [
                    self.preprocess_parsing_map(m, image.size, index)
                    for index, (m, image) in enumerate(zip(maps, rgb_images))
                ]
            )
        return BatchFeature(data=data, tensor_type=return_tensors)

    # -------------------------------------------------------------------------------------------------------------
    def to_rgb(self, image, index: int = 0) -> "Image.Image":
        """Any supported input -> an upright 8-bit RGB PIL image; errors name the offending image."""
        source = f"image {index}"
        if isinstance(image, (str, os.PathLike)):
            source = f"image {index} ({os.fspath(image)})"
            image = open_image(image, self.max_image_pixels, source)
        elif isinstance(image, Image.Image):
            try:
                image.load()
            except (OSError, SyntaxError) as error:
                raise ValueError(f"{source} is corrupt or truncated: {error}") from None
        elif hasattr(image, "__array__") or isinstance(image, torch.Tensor):
            image = array_to_pil(torch.as_tensor(image), source)
        else:
            raise TypeError(
                f"{source} is a {type(image).__name__}; expected a PIL image, a file path, or an array/tensor "
                "of shape (H, W), (H, W, C) or (C, H, W)"
            )
        if image.width < 1 or image.height < 1:
            raise ValueError(f"{source} is empty ({image.width}x{image.height})")
        try:
            image = ImageOps.exif_transpose(image)
        except Exception:  # malformed EXIF must not lose the image; keep its stored orientation
            pass
        if image.mode == "RGB":
            return image
        if image.mode in SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
            return self._high_depth_to_rgb(image)
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (*self.alpha_background, 255))
            return Image.alpha_composite(background, rgba).convert("RGB")
        return image.convert("RGB")

    @staticmethod
    def _high_depth_to_rgb(image: "Image.Image") -> "Image.Image":
        """16-bit / 32-bit integer / float grayscale -> 8-bit RGB (16-bit scaled by 1/257, others by their range)."""
        sixteen_bit = image.mode in SIXTEEN_BIT_MODES
        if image.mode != "F":
            image = image.convert("I")
        dtype = torch.float32 if image.mode == "F" else torch.int32
        values = torch.frombuffer(bytearray(image.tobytes()), dtype=dtype).reshape(image.height, image.width).float()
        if sixteen_bit or (image.mode == "I" and values.max() > 255 and values.max() <= 65535 and values.min() >= 0):
            values = values / 257.0
        elif image.mode == "F" and values.max() <= 1.0 and values.min() >= 0:
            values = values * 255.0
        elif values.max() > 255 or values.min() < 0:
            low, high = values.min(), values.max()
            values = (values - low) / (high - low).clamp(min=1e-12) * 255.0
        gray = values.round().clamp(0, 255).to(torch.uint8)
        return Image.frombytes("L", (image.width, image.height), gray.numpy().tobytes()).convert("RGB")

    # -------------------------------------------------------------------------------------------------------------
    def preprocess_parsing_map(self, parsing_map, image_size: tuple[int, int], index: int = 0) -> torch.Tensor:
        """A label map (H, W) of ints in 0..num_parsing_labels-1 -> (size, size) long tensor, nearest-neighbour.
        `None` gives a map of -1: the model's own parser fills it."""
        if parsing_map is None:
            return torch.full((self.size, self.size), PARSE_THIS_IMAGE, dtype=torch.long)
        source = f"parsing map {index}"
        if isinstance(parsing_map, (str, os.PathLike)):
            source = f"parsing map {index} ({os.fspath(parsing_map)})"
            try:
                parsing_map = open_image(parsing_map, self.max_image_pixels, source)
            except FileNotFoundError as error:
                raise ValueError(str(error)) from None
        if isinstance(parsing_map, Image.Image):
            if parsing_map.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                raise ValueError(
                    f"{source} is a {parsing_map.mode} image; a parsing map holds one label index per pixel "
                    "(mode L, P or I), not colours"
                )
            mode = parsing_map.mode
            if mode != "L" and mode != "P":
                parsing_map = parsing_map.convert("I")
            dtype = torch.uint8 if parsing_map.mode in ("L", "P") else torch.int32
            labels = torch.frombuffer(bytearray(parsing_map.tobytes()), dtype=dtype)
            labels = labels.reshape(parsing_map.height, parsing_map.width).long()
        elif hasattr(parsing_map, "__array__") or isinstance(parsing_map, torch.Tensor):
            labels = torch.as_tensor(parsing_map)
            if labels.is_floating_point():
                if not bool((labels == labels.round()).all()):
                    raise ValueError(f"{source} holds non-integer values; it must hold label indices")
            labels = labels.long()
        else:
            raise TypeError(f"{source} is a {type(parsing_map).__name__}; expected a PIL image, path, array or tensor")

        if labels.dim() == 3 and labels.shape[0] == 1:
            labels = labels[0]
        if labels.dim() != 2:
            raise ValueError(f"{source} has shape {tuple(labels.shape)}; expected (height, width) of label indices")
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= self.num_parsing_labels:
            raise ValueError(
                f"{source} holds labels in [{low}, {high}]; valid labels are 0..{self.num_parsing_labels - 1} "
                "(CelebAMask-HQ classes)"
            )
        image_width, image_height = image_size
        map_aspect, image_aspect = labels.shape[1] / labels.shape[0], image_width / image_height
        if abs(map_aspect - image_aspect) > 0.02 * image_aspect:
            raise ValueError(
                f"{source} is {labels.shape[1]}x{labels.shape[0]} (WxH) but its image is {image_width}x{image_height}:"
                " the aspect ratios differ, so the map does not belong to this image"
            )
        resized = F.interpolate(labels[None, None].float(), size=(self.size, self.size), mode="nearest")
        return resized[0, 0].long()


def flatten_images(images) -> list:
    """One image, a list of images, or a list of per-sample lists -> a flat list."""
    if images is None:
        return []
    if isinstance(images, (list, tuple)):
        flat = []
        for item in images:
            flat.extend(flatten_images(item) if isinstance(item, (list, tuple)) else [item])
        return flat
    return [images]


def array_to_pil(array: torch.Tensor, source: str) -> "Image.Image":
    """(H, W), (H, W, C) or (C, H, W) arrays of uint8, uint16, ints or floats in [0, 1] -> PIL image."""
    if array.dim() == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = array.permute(1, 2, 0)
    if array.dim() == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.dim() not in (2, 3) or (array.dim() == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(f"{source} has shape {tuple(array.shape)}; expected (H, W), (H, W, 3|4) or (3|4, H, W)")
    if array.numel() == 0:
        raise ValueError(f"{source} is empty (shape {tuple(array.shape)})")
    is_float = array.is_floating_point()
    array = array.float()
    if is_float and array.max() <= 1.0 and array.min() >= 0:
        array = array * 255.0
    elif array.max() > 255:
        array = array / 257.0 if array.max() <= 65535 else array / array.max() * 255.0
    array = array.round().clamp(0, 255).to(torch.uint8).contiguous()
    mode = "L" if array.dim() == 2 else ("RGB" if array.shape[-1] == 3 else "RGBA")
    height, width = array.shape[:2]
    return Image.frombytes(mode, (width, height), array.numpy().tobytes())


__all__ = ["FaceInsightImageProcessor"]
