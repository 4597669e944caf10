"""Small helpers shared by the tests (importable because pytest puts tests/ on the path)."""


def chat_prompt(processor, question="Is this person smiling?", images=1):
    """The chat-template prompt a user's message with `images` images and a question becomes."""
    content = [{"type": "image"}] * images + [{"type": "text", "text": question}]
    return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
