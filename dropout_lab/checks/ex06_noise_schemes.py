"""Exercise 6 (new noise schemes): Gaussian dropout, a Monte Carlo estimate of a
noise's mean and variance, and the unbiasedness of a scheme of one's own.

`p` is the DROP probability. Gaussian dropout with dropout's mean and variance
multiplies h by 1 + sqrt(p/(1-p))·eps, eps ~ N(0, 1): E = h, Var = p/(1-p)·h².
(Srivastava et al., 2014, sec. 10, write N(1, (1-q)/q) with the keep
probability q = 1 - p.) Every check draws inside engine.seeded.
"""
import math

import torch

from .engine import Fail, Mistake, check, report, seeded, tensor

__all__ = ["check_gaussian_dropout", "check_noise_moments", "check_noise_unbiased"]


def _noisy(fn, h, p):
    """fn(h, p), if it is a finite tensor of h's shape and not h; else the check fails."""
    out = tensor(fn(h.clone(), p))
    if out.shape != h.shape:
        raise Fail(f"a {tuple(h.shape)} input came out {tuple(out.shape)}: the noise must "
                   "keep the shape")
    if not torch.isfinite(out).all():
        raise Fail(f"the output has NaN or inf at p = {p}")
    if torch.equal(out, h):
        raise Fail(f"the output equals h on every draw: there is no noise at p = {p}")
    return out


def _moments(out, h):
    """Mean, variance and standard error of the mean of the multipliers out/h, h > 0."""
    m = out[:, 1:].double() / h[:, 1:]
    return m.mean().item(), m.var().item(), math.sqrt(m.var().item() / m.numel())


def _mistake_with_moments(mean, var, h, p):
    """The hint of the first known mistake whose multipliers have this mean and
    variance, however its noise was drawn; else None."""
    for mistake in GAUSSIAN_MISTAKES:
        try:
            its_mean, its_var, its_se = _moments(mistake.wrong(h.clone(), p), h)
        except Exception:  # noqa: BLE001 - a mistake that cannot run here is not this one
            continue
        if abs(mean - its_mean) < 6 * its_se and abs(var - its_var) < 0.05 * its_var:
            return mistake.hint
    return None


@check
def check_gaussian_dropout(fn):
    """Check fn(h, p) -> h·(1 + sqrt(p/(1-p))·eps), one eps ~ N(0,1) per element."""
    p, right_var = 0.2, 0.25  # p/(1-p)
    h = torch.tensor([0.0, 0.5, 1.0, 2.0, 3.0], dtype=torch.float64).expand(40_000, 5)
    with seeded(0):
        out = _noisy(fn, h, p)
        if out.dtype != h.dtype:
            raise Fail(f"float64 input gave {out.dtype}: draw eps with torch.randn_like(h)")
        if torch.equal(out[0], out[1]) and torch.equal(out[1], out[2]):
            raise Fail("every row got the same noise: one eps per unit shared by the whole "
                       "batch. Draw one eps per element, torch.randn_like(h)")
        if out[:, 0].abs().max() > 1e-12:
            raise Fail("h = 0 came out nonzero: that is additive noise. Dropout-like noise "
                       "is multiplicative, h·(1 + sigma·eps)")
        zeros = (out[:, 1:] == 0).double().mean().item()
        if zeros > 0.01:
            raise Fail(f"{zeros:.0%} of the outputs are 0: that is Bernoulli dropout. "
                       "Gaussian dropout multiplies by 1 + sigma·eps, eps = randn_like(h)")
        mean, var, se = _moments(out, h)
        if abs(mean - 1) > 6 * se or abs(var - right_var) > 0.05 * right_var:
            hint = _mistake_with_moments(mean, var, h, p)
            raise Fail(f"E[output]/h = {mean:.3f} and Var[output]/h² = {var:.3f} at p = {p}; "
                       f"dropout's are 1 and p/(1-p) = {right_var}"
                       + (f": {hint}" if hint else ""))
        beyond = ((out[:, 1:] / h[:, 1:] - 1).abs() > 2 * math.sqrt(var)).double().mean()
        if not 0.035 < beyond < 0.057:
            raise Fail(f"{beyond:.1%} of the multipliers lie beyond 2 standard deviations "
                       "(a Gaussian has 4.6%): draw eps with torch.randn_like(h)")
        if not torch.equal(tensor(fn(h[:4].clone(), 0.0)), h[:4]):
            raise Fail("p = 0 must return h unchanged (sigma = 0)")
        try:
            fn(h[:4].float().to("meta"), 0.5)
        except Exception as error:  # noqa: BLE001 - only a device error is a hint here
            if "device" in str(error):
                raise Fail("eps is made on the CPU while h lives elsewhere (this fails on a "
                           "GPU): use torch.randn_like(h)") from None
    return report("gaussian_dropout", True, f"E[output]/h = {mean:.3f}, Var[output]/h² = "
                  f"{var:.4f} (p/(1-p) = {right_var:.4f}) at p = {p}, Gaussian, one eps per "
                  "element")


@check
def check_noise_moments(fn):
    """Check fn(noise, h, n_draws) -> (mean, se, var): per element of h, the mean of
    n_draws independent draws of noise(h), its standard error, and their variance."""
    h, n, drawn = torch.tensor([0.0, 1.0, 2.0, 3.0]), 20_000, []

    def counting_dropout(x):
        drawn.append(x.numel())
        return _bernoulli(x, 0.5)

    with seeded(0):
        result = fn(counting_dropout, h, n)
    if not (isinstance(result, (tuple, list)) and len(result) == 3):
        raise Fail("return three tensors: (mean, se, var)")
    mean, se, var = (torch.as_tensor(t).double() for t in result)
    if not mean.shape == se.shape == var.shape == h.shape:
        raise Fail(f"mean, se and var have shapes {[tuple(t.shape) for t in (mean, se, var)]};"
                   f" each needs h's {tuple(h.shape)}: one estimate per element, over dim 0")
    if (var[1:] == 0).all():
        raise Fail("variance 0: every draw is the same one. Each must call the noise anew")
    if sum(drawn) < n * h.numel():
        raise Fail(f"the noise drew {sum(drawn)} values, fewer than n_draws × h.numel(): "
                   "call it on h repeated, noise(h.expand(n_draws, *h.shape).contiguous())")
    exact_var = h.double() ** 2  # inverted dropout with p = 0.5: p/(1-p)·h² = h²
    exact_se = torch.sqrt(exact_var / n)
    if (((mean - h).abs() > 6 * exact_se + 1e-9).any()
            or ((var - exact_var).abs() > 0.05 * exact_var + 1e-9).any()):
        raise Fail(f"mean {mean.numpy().round(3)} and var {var.numpy().round(3)} for dropout "
                   f"(p = 0.5) on h = {h.numpy()}: they should be close to h and h², the mean "
                   "and variance over the draws (dim 0)")
    if not torch.allclose(se[1:], exact_se[1:], rtol=0.05):
        raise Fail(f"se {se.numpy()}: the standard error of the mean of n draws is "
                   f"std/sqrt(n) = {exact_se.numpy()}, not the std of one draw")
    mean, _, var = fn(lambda x: x + 0.0, h, 100)
    if not (torch.allclose(torch.as_tensor(mean).double(), h.double())
            and (torch.as_tensor(var) == 0).all()):
        raise Fail("for a noise that returns h unchanged, mean must be h and var 0")
    return report("noise_moments", True, "per-element mean, standard error std/sqrt(n) and "
                  f"variance over {n} independent draws match inverted dropout's h and h² "
                  "(p = 0.5)")


@check
def check_noise_unbiased(fn, p=0.5, n=50_000):
    """Say whether a noise scheme fn(h, p) is unbiased: its mean over n draws must lie
    within 5 standard errors of h for every h in a grid of positive values."""
    h = torch.linspace(0.25, 2.0, 8).expand(n, 8)
    with seeded(0):
        _noisy(fn, torch.rand(2, 3, 4) + 0.5, p)
        out = _noisy(fn, h, p).double()
    ratio = out / h
    ratio_se = ratio.std().item() / math.sqrt(out.numel())
    z = ((out.mean(0) - h[0]) / (out.std(0) / math.sqrt(n)).clamp_min(1e-12)).abs().max()
    if z > 5:
        raise Fail(f"biased: E[output]/h = {ratio.mean():.3f} ± {ratio_se:.3f} over {n} "
                   f"draws at p = {p} (should be 1; worst element {z:.0f} standard errors "
                   "off). Rescale so that the multiplier has mean 1")
    return report("noise_unbiased", True, f"unbiased: E[output]/h = {ratio.mean():.4f} ± "
                  f"{ratio_se:.4f} over {n} draws at p = {p}")


# The references and the known mistakes (tests/test_checks_tables.py walks the tables)

def gaussian_dropout(h, p):
    """h * (1 + sqrt(p/(1-p)) * eps): dropout's mean and variance, Gaussian noise."""
    return h * (1 + math.sqrt(p / (1 - p)) * torch.randn_like(h))


def mc_moments(noise, h, n_draws=100_000):
    """Mean, its standard error and the variance of noise(h) over n_draws draws."""
    draws = noise(h.expand(n_draws, *h.shape).contiguous())
    mean, var = draws.mean(0), draws.var(0)
    return mean, torch.sqrt(var / n_draws), var


def uniform_noise(h, p):
    """h * (1 + a * u), u uniform on [-1, 1): a scheme of one's own, unbiased."""
    return h * (1 + math.sqrt(3 * p / (1 - p)) * (2 * torch.rand_like(h) - 1))


def _bernoulli(h, p):
    return h * (torch.rand_like(h) >= p) / (1 - p)


def _not_implemented(*args):
    raise NotImplementedError("TODO: h * (1 + sigma * eps)")


def _noise(h, sigma, mean=1.0, eps=torch.randn_like):
    return h * (mean + sigma * eps(h))


GAUSSIAN_MISTAKES = [
    Mistake(lambda h, p: _noise(h, math.sqrt(p)), "the variance is p·h², sigma = sqrt(p)"),
    Mistake(lambda h, p: _noise(h, math.sqrt((1 - p) / p)), "keep and drop are swapped: "
            "Srivastava et al.'s (1-q)/q is in terms of the KEEP probability q = 1-p"),
    Mistake(lambda h, p: _noise(h, p / (1 - p)), "the square root is missing, sigma = "
            "sqrt(p/(1-p))"),
    Mistake(lambda h, p: _noise(h, 1.0), "eps is not scaled at all"),
    # N(1-p, p(1-p)), the moments of an unscaled Bernoulli mask
    Mistake(lambda h, p: _noise(h, math.sqrt(p * (1 - p)), mean=1 - p), "the noise is "
            "unscaled, E = (1-p)·h. Use 1 + sigma·eps, whose mean is 1"),
    Mistake(lambda h, p: _noise(h, math.sqrt(p / (1 - p)), mean=0.0), "the multiplier has "
            "mean 0: you forgot the 1 in h·(1 + sigma·eps)"),
    Mistake(lambda h, p: h + math.sqrt(p / (1 - p)) * torch.randn_like(h), "additive"),
    Mistake(_bernoulli, "Bernoulli dropout"),
    Mistake(uniform_noise, "a Gaussian has 4.6%"),
    Mistake(lambda h, p: _noise(h, math.sqrt(p / (1 - p)),
                                eps=lambda h: torch.randn(h.shape[-1], dtype=h.dtype)),
            "shared by the whole batch"),
    Mistake(lambda h, p: _noise(h, math.sqrt(p / (1 - p)),
                                eps=lambda h: torch.randn(h.shape, dtype=h.dtype)),
            "on the CPU"),
    Mistake(_not_implemented, "not implemented yet"),
]


def _se_is_std(noise, h, n_draws=100_000):
    mean, _, var = mc_moments(noise, h, n_draws)
    return mean, var.sqrt(), var


def _one_draw_reused(noise, h, n_draws=100_000):
    return mc_moments(lambda many: noise(h).expand(n_draws, *h.shape), h, n_draws)


def _wrong_axis(noise, h, n_draws=100_000):
    draws = noise(h.expand(n_draws, *h.shape).contiguous())
    return draws.mean(1), draws.std(1) / math.sqrt(h.numel()), draws.var(1)


MISTAKES = {
    "gaussian_dropout": GAUSSIAN_MISTAKES,
    "noise_moments": [
        Mistake(_se_is_std, "std/sqrt(n)"),
        Mistake(_one_draw_reused, "every draw is the same one"),
        Mistake(_wrong_axis, "one estimate per element"),
        Mistake(lambda noise, h, n_draws: mc_moments(noise, h, 100), "fewer than n_draws")],
    "noise_unbiased": [
        Mistake(lambda h, p: h * (torch.rand_like(h) >= p), "biased: E[output]/h = 0.50"),
        Mistake(lambda h, p: h, "there is no noise"),
        Mistake(lambda h, p: h.flatten(), "must keep the shape"),
        Mistake(_not_implemented, "not implemented yet")],
}
REFERENCES = {"gaussian_dropout": gaussian_dropout, "noise_moments": mc_moments,
              "noise_unbiased": uniform_noise}
