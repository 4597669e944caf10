"""Small helpers shared by the tests (importable because pytest puts tests/ on the path)."""

import json
import subprocess
import sys


def chat_prompt(processor, question="Is this person smiling?", images=1):
    """The chat-template prompt a user's message with `images` images and a question becomes."""
    content = [{"type": "image"}] * images + [{"type": "text", "text": question}]
    return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)


def load_check_report(folder, image, cwd) -> dict:
    """Run the publishing load check (a fresh process that cannot import faceinsight) on `folder` and `image`; its
    JSON report. Fails the test, with the end of its stderr, when the check fails."""
    from faceinsight.hub.validate import LOAD_CHECK

    result = subprocess.run(
        [sys.executable, str(LOAD_CHECK), str(folder), str(image)], capture_output=True, text=True, cwd=cwd, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.split("REPORT ", 1)[1])
