"""Preference rows in the formats TRL reads unchanged.

- standard: {"id", "prompt": str, "chosen": str, "rejected": str, "margin", "source"}
- conversational: prompt as chat messages, chosen and rejected as one assistant message each.

`source` says where the verdict comes from ("labels": the project's annotators; "import:<name>":
a preference file); the training rounds' rows leave it out (source=None).
"""


def pair_id(pair_pk: int) -> str:
    """The id a pair carries in every export: stable because the pair row is updated in place."""
    return f"pair-{pair_pk}"


def prompt_as_text(messages) -> str:
    """A chat prompt flattened for the standard (non-conversational) format. A single user
    turn is its content alone; a multi-turn chat keeps speaker labels."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages) + "\n\nAssistant:"


def standard_row(pk, messages, chosen, rejected, margin, source=None):
    row = {"id": pair_id(pk), "prompt": prompt_as_text(messages), "chosen": chosen, "rejected": rejected,
           "margin": margin}
    return row if source is None else {**row, "source": source}


def conversational_row(pk, messages, chosen, rejected, margin, source=None):
    row = {
        "id": pair_id(pk), "prompt": messages,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "margin": margin,
    }
    return row if source is None else {**row, "source": source}
