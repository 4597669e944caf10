"""An offline tokenizer for tiny test/demo models: byte-level BPE trained in memory on face-question text.

Byte-level means every string tokenizes (nothing is out of vocabulary); the special tokens are the ones the
FaceInsight processor and chat template use.
"""

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from faceinsight.modeling.schema_faceinsight import (
    CELEBA_ATTRIBUTES,
    DEFAULT_CATEGORICAL_FACETS,
    default_label_prompt,
)

IMAGE_TOKEN = "<image>"
PARSING_TOKEN = "<parsing>"
CHAT_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _training_corpus() -> list[str]:
    lines = [
        "Describe this face. What is the age, gender, race and expression of this person?",
        "Does this person wear eyeglasses? Answer yes or no. Is the person smiling? Which expression is shown?",
        "The person is a young woman with blond hair, smiling, wearing lipstick and earrings.",
        "The person is an older man with gray hair, a beard and a neutral expression.",
        "Answer with one of the options. Options: happiness, sadness, surprise, fear, disgust, anger, neutral.",
        "user assistant system yes no the a an of with and is are this that face person image",
    ]
    lines += [name.replace("_", " ") for name in CELEBA_ATTRIBUTES]
    for facet, values in DEFAULT_CATEGORICAL_FACETS.items():
        lines.append(f"{facet}: " + ", ".join(values))
    lines += [default_label_prompt(name) for name in CELEBA_ATTRIBUTES]
    return lines * 4


def build_tiny_tokenizer(
    vocab_size: int = 512, placeholder_tokens: tuple[str, ...] = (IMAGE_TOKEN, PARSING_TOKEN)
) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=CHAT_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_training_corpus(), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        padding_side="left",
    )
    wrapped.add_special_tokens({"additional_special_tokens": list(placeholder_tokens)})
    return wrapped
