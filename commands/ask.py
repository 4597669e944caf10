"""`faceinsight ask MODEL IMAGE "question"`: a FaceInsight folder or repo answers a question about a face;
`--attributes` prints one JSON document with the answer and the structured predictions.

    faceinsight ask outputs/demo/model assets/astronaut_face.png "Is this person smiling?" --attributes
"""

from __future__ import annotations

import argparse
import json

from faceinsight.commands._common import trust_remote_code_flag


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceinsight ask", description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", help="a FaceInsight model folder or Hub id")
    parser.add_argument("image", help="path to an image")
    parser.add_argument("question", nargs="?", default="Describe this face.", help="the question")
    parser.add_argument("--parsing-map", help="a label-map image (0..18 per pixel) to use instead of the parser")
    parser.add_argument(
        "--attributes", action="store_true", help="print the answer and the structured predictions as one JSON document"
    )
    parser.add_argument("--max-new-tokens", type=int, default=64)
    trust_remote_code_flag(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from faceinsight.folders import check_model_source
    from faceinsight.inference import FaceInsightAssistant
    from faceinsight.processing.image_processing_faceinsight import open_image

    args = parser().parse_args(argv)
    check_model_source(args.model_dir, "model")
    open_image(args.image)  # a bad image is named before the model loads
    assistant = FaceInsightAssistant.from_pretrained(args.model_dir, trust_remote_code=args.trust_remote_code)
    answer = assistant.ask(args.image, args.question, parsing_map=args.parsing_map, max_new_tokens=args.max_new_tokens)
    if not args.attributes:
        print(answer)
        return 0
    structured = assistant.attributes(args.image, parsing_map=args.parsing_map)
    print(json.dumps({"question": args.question, "answer": answer, **structured}, indent=2))
    return 0
