"""Loss terms of MOSS (paper section 3.2): Eq. 6, 8-11 and their total, Eq. 12 (:func:`moss_loss`).

All images are (B, 3, H, W) tensors in [-1, 1]. L1 terms are means over all elements; the TV
term (Eq. 11) is the anisotropic total variation, mean |dx| + mean |dy| (the paper does not say
which norm; this is written down here and in the README).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["l1", "tv", "noisy_samples", "moss_loss"]


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pixel-wise L1 of Eq. 6 / Eq. 10 (mean)."""
    return F.l1_loss(pred, target)


def tv(img: torch.Tensor) -> torch.Tensor:
    """Total variation of Eq. 11: mean |x[:, :, :, 1:] - x[:, :, :, :-1]| + mean over rows."""
    dx = (img[..., :, 1:] - img[..., :, :-1]).abs().mean()
    dy = (img[..., 1:, :] - img[..., :-1, :]).abs().mean()
    return dx + dy


def noisy_samples(
    x_l: torch.Tensor,
    y_l: torch.Tensor,
    x_u: torch.Tensor,
    y_p: torch.Tensor,
    n: int,
    generator: torch.Generator,
    alpha_range: tuple[float, float] = (0.5, 1.1),
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Pseudo-paired noisy data of Eq. 8-9: ``(x_n, y_hat, info)``, each (n, 3, H, W).

    Residuals R = {x_l - y_l} u {x_u - y_p} (Eq. 8). A background x_hat is drawn uniformly from
    X_L u Y_L u X_U u Y_P with its label (a clean image is its own label; a labeled rainy image's
    label is its ground truth; an unlabeled image's label is its pseudo-label), a residual r from
    R, alpha ~ U(a, b), and x_n = clamp(x_hat + alpha * r, -1, 1) (Eq. 9, T = clamp to the image
    range). ``info`` holds the drawn indices and alphas (for tests and logging).
    """
    backgrounds = torch.cat([x_l, y_l, x_u, y_p])  # (2B + 2B_u, 3, H, W)
    labels = torch.cat([y_l, y_l, y_p, y_p])
    residuals = torch.cat([x_l - y_l, x_u - y_p])  # (B + B_u, 3, H, W)
    bi = torch.randint(len(backgrounds), (n,), generator=generator)
    ri = torch.randint(len(residuals), (n,), generator=generator)
    a, b = alpha_range
    alpha = a + (b - a) * torch.rand(n, generator=generator)
    dev = backgrounds.device
    bi_d, ri_d = bi.to(dev), ri.to(dev)
    x_n = (backgrounds[bi_d] + alpha.to(dev).view(-1, 1, 1, 1) * residuals[ri_d]).clamp(-1.0, 1.0)
    return x_n, labels[bi_d], {"background": bi, "residual": ri, "alpha": alpha}


def moss_loss(
    out_l: torch.Tensor,
    y_l: torch.Tensor,
    out_n: torch.Tensor | None = None,
    y_hat: torch.Tensor | None = None,
    lambdas: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> dict[str, torch.Tensor]:
    """The total loss of Eq. 12, ``L = l1 * L_SU + l2 * L_UN + l3 * L_TV``, with its terms.

    ``out_l``: the student's output on the labeled crops, ``y_l`` their ground truth (Eq. 6);
    ``out_n``: its output on the noisy pairs' inputs, ``y_hat`` their labels (Eq. 10, and the TV
    of ``out_n``, Eq. 11). Without noisy pairs (pre-training) L_UN and L_TV are zero and the
    total is ``l1 * L_SU``. Returns ``{"loss", "l_su", "l_un", "l_tv"}`` (0-dim tensors).
    """
    l_su = l1(out_l, y_l)
    if out_n is None:
        l_un = l_tv = torch.zeros((), device=out_l.device)
    else:
        l_un, l_tv = l1(out_n, y_hat), tv(out_n)
    lambda_su, lambda_un, lambda_tv = lambdas
    loss = lambda_su * l_su + lambda_un * l_un + lambda_tv * l_tv
    return {"loss": loss, "l_su": l_su, "l_un": l_un, "l_tv": l_tv}
