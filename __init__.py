"""FaceInsight: a Hugging Face-native multimodal LLM for face perception.

Importing this package registers the FaceInsight classes with the transformers Auto classes, so a saved folder loads
with `AutoModel` / `AutoModelForImageTextToText` / `AutoProcessor` even without `trust_remote_code`.
"""

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageTextToText,
    AutoProcessor,
)

from .modeling.configuration_faceinsight import FaceInsightConfig
from .modeling.modeling_faceinsight import (
    FaceInsightForConditionalGeneration,
    FaceInsightModel,
    FaceInsightPreTrainedModel,
)
from .processing.image_processing_faceinsight import FaceInsightImageProcessor
from .processing.processing_faceinsight import FaceInsightProcessor

__version__ = "0.1.0"

AutoConfig.register("faceinsight", FaceInsightConfig, exist_ok=True)
AutoModel.register(FaceInsightConfig, FaceInsightForConditionalGeneration, exist_ok=True)
AutoModelForImageTextToText.register(FaceInsightConfig, FaceInsightForConditionalGeneration, exist_ok=True)
AutoImageProcessor.register(
    FaceInsightConfig, image_processor_classes={"pil": FaceInsightImageProcessor}, exist_ok=True
)
AutoProcessor.register(FaceInsightConfig, FaceInsightProcessor, exist_ok=True)

__all__ = [
    "FaceInsightConfig",
    "FaceInsightForConditionalGeneration",
    "FaceInsightImageProcessor",
    "FaceInsightModel",
    "FaceInsightPreTrainedModel",
    "FaceInsightProcessor",
]
