"""Sampling from a Hugging Face causal LM: the one `model.generate` call behind both `execrl generate` (the hf
engine) and PPO's rollouts and in-loop evaluation, and the one picker of the precision flag.

So that the in-loop `eval/synth/pass@1` and a final `execrl generate` + `evaluate` measure the same
distribution, both go through `sample_tokens` with a `Sampling` whose every knob is explicit:

- temperature T > 0 samples from softmax(logits / T); T = 0 is greedy decoding;
- top-k is off (`top_k=0`) unless asked for. transformers would otherwise apply the `top_k=50` of its
  `GenerationConfig` defaults, which neither vLLM nor an OpenAI-compatible server applies, and which PPO
  cannot allow: its log-probs are those of softmax(logits / T), so rollouts must be drawn from exactly that;
- top-p (nucleus, Holtzman et al. 2020, arXiv:1904.09751) is the caller's: 1.0 (off) in PPO, `--top-p` in
  `execrl generate`.

Stop strings end a row during generation with transformers' own matcher (`StopStringCriteria`, the class
behind `generate(stop_strings=..., tokenizer=...)`), applied per row to the generated tokens only. The
`stop_strings` argument itself is not used because it (1) takes one list for the whole batch, while every
row may have its own stops, and (2) matches across the prompt boundary: a synth prompt ends in a newline, so
a first generated "\\n" completed the stop "\\n\\n" and ended the row before its body (6 of 800 samples of a
random-weight tiny model did so; with the matcher on the generated tokens, 0 of 800 differ from cutting a
full-length generation afterwards). After generation each row is cut per row: the response ends at EOS or at
the token that completed one of its stops, and its text is cut before the earliest stop.

torch and transformers are imported inside functions, so importing this module stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from execrl.harness.generation.base import truncate_at_stop

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""Values of every `precision` choice (weights for generation, autocast for training)."""


def pick_device(device: str = "auto") -> Any:
    """`torch.device` for a `--device` flag value: `auto` (CUDA if available), `cpu`, `cuda`, `cuda:N`.

    Raises ValueError for a name torch does not know, or CUDA asked for where there is none."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine")
    try:
        return torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"--device: {e}") from None


def pick_dtype(device: Any, precision: str = "auto") -> Any:
    """The torch dtype for a `precision` choice on a `torch.device`.

    auto: bf16 on a CUDA device that supports it, else fp16 on CUDA, else fp32; an explicit name wins.
    Raises ValueError naming the choices for anything else.
    """
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen; the defaults are the ones both callers use unless told otherwise."""

    temperature: float
    """0 is greedy; above 0, sample from softmax(logits / temperature)."""
    top_p: float = 1.0
    """Nucleus mass; 1.0 keeps the whole distribution."""
    top_k: int = 0
    """Keep only the k most likely tokens; 0 keeps all (transformers' own default would be 50)."""

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")

    def generate_kwargs(self) -> dict[str, Any]:
        """The sampling arguments of `model.generate`, every one explicit so the model's defaults never apply."""
        if self.temperature == 0:
            return {"do_sample": False}
        return {"do_sample": True, "temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p}


@dataclass
class Sampled:
    """Responses to a batch of encoded prompts."""

    response_ids: Any  # (B, A) right-padded with the pad id after each row's end
    response_mask: Any  # (B, A) 1 up to and including the token that ended the row (EOS or a stop's last token)
    texts: list[str]
    """Each row's decoded response (special tokens skipped), cut before its earliest stop."""
    logprobs: Any = None  # (B, A) with `logprobs=True`: each token's log-prob where it was drawn, 0 after the end


def sample_tokens(
    model: Any,
    tokenizer: Any,
    input_ids: Any,
    attention_mask: Any,
    stops: Sequence[Sequence[str]],
    *,
    max_new_tokens: int,
    sampling: Sampling,
    logprobs: bool = False,
) -> Sampled:
    """Generate up to `max_new_tokens` for each row of LEFT-padded `input_ids` (B, Q), `stops[i]` ending row i.

    Uses torch's global RNG (seed it first for reproducible samples). The model is put in eval mode for the
    call and given back in the mode it had. With `logprobs`, each sampled token's log-prob under the
    distribution it was drawn from comes back too (`_LogprobRecorder`: only observes, so the tokens are the same
    with or without it); only for temperature sampling with top-p and top-k off, the one distribution it knows.
    """
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    if len(stops) != input_ids.shape[0]:
        raise ValueError(f"stops has {len(stops)} lists for {input_ids.shape[0]} rows")
    if logprobs and (sampling.temperature == 0 or sampling.top_p < 1 or sampling.top_k):
        raise ValueError("logprobs are recorded for temperature sampling with top-p and top-k off only")
    n_query = input_ids.shape[1]
    device = next(model.parameters()).device
    eos_ids = _eos_ids(model, tokenizer)
    criterion = _stop_criterion(tokenizer, stops, n_query)
    recorder = _LogprobRecorder(sampling.temperature, n_query) if logprobs else None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            sequences = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=eos_ids,
                stopping_criteria=StoppingCriteriaList([criterion]),
                logits_processor=LogitsProcessorList([recorder] if recorder else []),
                **sampling.generate_kwargs(),
            )  # (B, Q + A)
    finally:
        model.train(was_training)
    response_ids = sequences[:, n_query:]  # (B, A)
    lengths = response_lengths(response_ids.tolist(), eos_ids, criterion.stopped_at)
    response_mask = torch.zeros_like(response_ids)
    texts = []
    for i, n in enumerate(lengths):
        response_mask[i, :n] = 1
        text = tokenizer.decode(response_ids[i, :n].tolist(), skip_special_tokens=True)
        texts.append(truncate_at_stop(text, list(stops[i])))
    response_ids = response_ids.masked_fill(response_mask == 0, tokenizer.pad_token_id)
    token_logprobs = recorder.finish(sequences).masked_fill(response_mask == 0, 0.0) if recorder else None
    return Sampled(response_ids, response_mask, texts, token_logprobs)


class _LogprobRecorder:
    """A logits processor that changes nothing and records log softmax(scores / T) at each sampled token.

    transformers runs a caller's logits processors after its own (repetition penalty and the like, which the
    recorded log-probs thus include) and before the temperature, top-k and top-p warpers
    (`GenerationMixin._get_logits_processor`), so the temperature is applied here: with top-k and top-p off,
    softmax(scores / T) is the distribution the token is drawn from. Step t's token is only known at step t + 1
    (it is then the last column of `input_ids`), so one step's log-probs (B, V) are held until then; `finish`
    reads the last token from the returned sequences (a step generate ran past the end and undid is never read).
    """

    def __init__(self, temperature: float, n_query: int) -> None:
        self.temperature = temperature
        self.n_query = n_query
        self.held: Any = None  # (B, V) log-probs of the step whose token is not known yet
        self.chosen: list[Any] = []  # (B,) per generated token

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self.held is not None:
            self.chosen.append(self.held.gather(-1, input_ids[:, -1:]).squeeze(-1))
        self.held = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        return scores

    def finish(self, sequences: Any) -> Any:
        """(B, A) log-probs of the generated tokens `sequences[:, Q:]`."""
        import torch

        n_new = sequences.shape[1] - self.n_query
        if len(self.chosen) < n_new and self.held is not None:
            self.chosen.append(self.held.gather(-1, sequences[:, -1:].to(self.held.device)).squeeze(-1))
        self.held = None
        if not self.chosen:
            return torch.zeros(sequences.shape[0], 0, device=sequences.device)
        return torch.stack(self.chosen[:n_new], dim=1).to(sequences.device)


def response_lengths(
    rows: Sequence[Sequence[int]], eos_ids: Sequence[int], stopped_at: Sequence[int | None]
) -> list[int]:
    """Tokens kept per response: up to and including the first EOS, or the token at which a stop ended the
    row (`stopped_at[i]` generated tokens), whichever comes first; all of them when neither happened."""
    lengths = []
    for ids, stop_len in zip(rows, stopped_at, strict=True):
        n = next((t + 1 for t, token in enumerate(ids) if token in eos_ids), len(ids))
        lengths.append(min(n, stop_len) if stop_len is not None else n)
    return lengths


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """The ids that end a response: the model's generation config's (chat models often list several, e.g.
    an end-of-turn token beside EOS), else the tokenizer's EOS."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is None:
        configured = tokenizer.eos_token_id
    return [configured] if isinstance(configured, int) else list(configured or [])


def _stop_criterion(tokenizer: Any, stops: Sequence[Sequence[str]], n_query: int) -> Any:
    """A StoppingCriteria ending each row once its generated tokens complete one of its own stops.

    Rows are grouped by their stop list, one transformers `StopStringCriteria` per group, each shown only
    the columns after the prompt. `.stopped_at[i]` records how many tokens row i had when its stop matched.
    """
    import torch
    from transformers import StoppingCriteria, StopStringCriteria

    groups: dict[tuple[str, ...], list[int]] = {}
    for row, row_stops in enumerate(stops):
        key = tuple(s for s in row_stops if s)  # an empty string would match everywhere; it means no stop
        if key:
            groups.setdefault(key, []).append(row)
    matchers = [(StopStringCriteria(tokenizer, list(key)), torch.tensor(rows)) for key, rows in groups.items()]

    class StopPerRow(StoppingCriteria):
        def __init__(self) -> None:
            self.stopped_at: list[int | None] = [None] * len(stops)

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            generated = input_ids[:, n_query:]  # (B, t)
            for matcher, rows in matchers:
                rows = rows.to(input_ids.device)
                done[rows] = matcher(generated[rows], scores)
            for row in done.nonzero().flatten().tolist():
                if self.stopped_at[row] is None:
                    self.stopped_at[row] = generated.shape[1]
            return done

    return StopPerRow()
