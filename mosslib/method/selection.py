"""Model selection: which validated network becomes a run's ``best.pt``.

One policy object owns the three settings that shape selection, each stored where old
checkpoints keep it (their meaning is unchanged, so saved configurations still load):

* ``data.val_extra_rain`` (:attr:`SelectionPolicy.extra_rain`): procedural rain styles rendered
  on the validation clean images as extra validation groups; the mean over all pairs selects;
* ``optim.select_teacher`` (:attr:`SelectionPolicy.teacher`): the EMA teacher (Eq. 7) is validated
  too and the better of the two is the candidate;
* ``optim.select_min_labeled`` (:attr:`SelectionPolicy.min_labeled`): a candidate below this PSNR on
  the labeled validation pairs is passed over (0: off).

Selection never looks at a test set: the validation split is carved from the labeled training data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

__all__ = ["SelectionPolicy", "BELOW_FLOOR"]

BELOW_FLOOR = "below_select_min_labeled"  # the log.jsonl flag of a validation with no eligible candidate


@dataclass(frozen=True)
class SelectionPolicy:
    teacher: bool = False
    min_labeled: float = 0.0
    extra_rain: tuple[str, ...] = ()

    @classmethod
    def of(cls, config) -> "SelectionPolicy":
        """The policy of a ``TrainConfig`` or of a saved configuration dict (missing keys: defaults)."""
        if isinstance(config, Mapping):
            optim, data = config.get("optim") or {}, config.get("data") or {}
            get_o, get_d = optim.get, data.get
        else:
            get_o = lambda k, d: getattr(config.optim, k, d)  # noqa: E731
            get_d = lambda k, d: getattr(config.data, k, d)  # noqa: E731
        styles = get_d("val_extra_rain", "") or ""
        return cls(
            teacher=bool(get_o("select_teacher", False)),
            min_labeled=float(get_o("select_min_labeled", 0.0) or 0.0),
            extra_rain=tuple(s.strip() for s in styles.split(",") if s.strip()),
        )

    def candidate(self, step: int, student: dict, teacher: dict | None = None) -> dict | None:
        """One validation's candidate: the higher validation mean of the student and (when
        validated) the EMA teacher, the student on ties, among those whose labeled group
        (``val_psnr_labeled``, else all pairs) reaches :attr:`min_labeled`; None when neither does."""
        options = [("student", student)] + ([("teacher", teacher)] if teacher is not None else [])
        eligible = [(n, r) for n, r in options if r.get("val_psnr_labeled", r["val_psnr"]) >= self.min_labeled]
        if not eligible:
            return None
        name, r = max(eligible, key=lambda o: o[1]["val_psnr"])  # max keeps the first of equals: the student
        chosen = {"step": step, "psnr": r["val_psnr"], "ssim": r["val_ssim"]}
        return {**chosen, "net": name} if teacher is not None else chosen

    def describe(self) -> str:
        """The rule in words (the model card's ``selection``)."""
        rule = "highest validation PSNR (RGB) on the held-out split of the labeled training data"
        if self.extra_rain:
            rule += (f", averaged over its pairs and procedural {' / '.join(self.extra_rain)} rain rendered "
                     "on its clean images (one group each)")
        if self.teacher:
            rule += "; at each validation the student and its EMA teacher (Eq. 7) are both candidates"
        if self.min_labeled:
            rule += f"; a candidate scoring below {self.min_labeled:g} dB on the labeled pairs alone is passed over"
        return rule

    def nothing_chosen(self, run) -> str:
        """Why a run has no ``best.pt`` (a warning at the end of training, an error at export)."""
        if self.min_labeled:
            return (f"{run}: no best.pt: no validation of this run reached optim.select_min_labeled={self.min_labeled:g} "
                    f"dB on the labeled pairs (log.jsonl: {BELOW_FLOOR})")
        return f"{run}: not a finished training run folder (no best.pt)"
