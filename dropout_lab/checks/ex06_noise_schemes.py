"""Checks for Exercise 6 (new noise schemes): Gaussian dropout, the Monte Carlo
estimate of a noise's mean and variance, and the unbiasedness of a scheme of
the student's own design.

`p` is the DROP probability. Gaussian dropout with dropout's mean and variance
multiplies h by 1 + sqrt(p/(1-p))·eps, eps ~ N(0, 1): E = h, Var = p/(1-p)·h².
(Srivastava et al., 2014, sec. 10, write N(1, (1-q)/q) with the keep
probability q = 1 - p.)

Every check runs under its own random seed (engine.seeded), so that it
is reproducible and leaves the notebook's random state alone.
"""
import math

import torch

from .engine import Mistake, check, report, seeded, tensor

__all__ = ["check_gaussian_dropout", "check_noise_moments", "check_noise_unbiased"]



def _variance_hint(ratio, p):
    """Name the wrong variance formula that `ratio` = Var[multiplier] matches, if any."""
    right = p / (1 - p)
    known = [(p, "p·h², i.e. sigma = sqrt(p)"),
             ((1 - p) / p, "(1-p)/p·h²: keep and drop are swapped (Srivastava et al.'s "
                           "(1-q)/q is in terms of the KEEP probability q = 1-p)"),
             (right ** 2, "(p/(1-p))²·h²: the square root is missing, sigma = sqrt(p/(1-p))"),
             (1.0, "h², i.e. eps is not scaled at all"),
             (p * (1 - p), "p(1-p)·h², the variance of an UNSCALED Bernoulli mask")]
    for value, text in known:
        if abs(ratio - value) < 0.05 * value:
            return f"the variance is {text}; dropout's is p/(1-p)·h²"
    return f"Var[output]/h² = {ratio:.3f} at p = {p}; dropout's is p/(1-p) = {right:.3f}"


@check
def check_gaussian_dropout(fn):
    """Check fn(h, p) -> h·(1 + sqrt(p/(1-p))·eps), one eps ~ N(0,1) per element.

    Fails with a hint on: variance p·h², (1-p)/p·h² (keep/drop swapped), no square
    root, unscaled eps, an unscaled mean (multiplier mean 1-p or 0), additive
    noise, a Bernoulli or uniform multiplier, one eps per unit shared by the
    batch, a changed shape or dtype, p = 0 not giving h, a CPU-made eps.
    """
    name = "gaussian_dropout"
    p, n = 0.2, 40_000
    levels = torch.tensor([0.0, 0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    h = levels.expand(n, 5).contiguous()
    with seeded(0):
        out = tensor(fn(h.clone(), p))
        if out.shape != h.shape:
            return report(name, False, f"output shape {tuple(out.shape)} differs from the input's "
                          f"{tuple(h.shape)}: the noise keeps the shape")
        if out.dtype != h.dtype:
            return report(name, False, f"float64 input gave {out.dtype}: draw eps with "
                          "torch.randn_like(h), in h's dtype")
        if not torch.isfinite(out).all():
            return report(name, False, "the output has NaN or inf at p = 0.2")
        if torch.equal(out[0], out[1]) and torch.equal(out[1], out[2]):
            return report(name, False, "every row got the same noise: one eps per unit shared "
                          "by the whole batch. Draw one eps per element, torch.randn_like(h)")
        if out[:, 0].abs().max() > 1e-12:
            return report(name, False, "h = 0 came out nonzero: that is additive noise. "
                          "Dropout-like noise is multiplicative, h·(1 + sigma·eps)")
        m = out[:, 1:] / h[:, 1:]          # the multipliers, n·4 of them
        if ((m - 1).abs() < 1e-12).all():
            return report(name, False, "the output equals h: no noise was added at p = 0.2")
        if (m == 0).double().mean() > 0.01:
            return report(name, False, f"{(m == 0).double().mean():.0%} of the outputs are 0: "
                          "that is Bernoulli dropout. Gaussian dropout multiplies by "
                          "1 + sigma·eps with eps = torch.randn_like(h)")
        mean, var = m.mean().item(), m.var().item()
        se = math.sqrt(var / m.numel())
        if abs(mean - 1) > 6 * se + 1e-9:
            if abs(mean - (1 - p)) < 6 * se + 0.01:
                hint = ("the multiplier has mean 1-p: the noise is unscaled, E = (1-p)·h. "
                        "Use 1 + sigma·eps, whose mean is 1")
            elif abs(mean) < 6 * se + 0.01:
                hint = "the multiplier has mean 0: you forgot the 1 in h·(1 + sigma·eps)"
            else:
                hint = f"E[output]/h = {mean:.3f} at p = {p}: the noise must be unbiased (mean 1)"
            return report(name, False, hint)
        if abs(var - p / (1 - p)) > 0.05 * p / (1 - p):
            return report(name, False, _variance_hint(var, p))
        beyond = ((m - 1).abs() > 2 * math.sqrt(var)).double().mean().item()
        if not 0.035 < beyond < 0.057:
            return report(name, False, f"{beyond:.1%} of the multipliers lie beyond 2 standard "
                          "deviations (a Gaussian has 4.6%): draw eps with torch.randn_like(h)")
        out = tensor(fn(h[:4].clone(), 0.0))
        if not torch.equal(out, h[:4]):
            return report(name, False, "p = 0 must return h unchanged (sigma = 0)")
        try:
            fn(h[:4].float().to("meta"), 0.5)
        except Exception as error:
            if "device" in str(error):
                return report(name, False, "eps is made on the CPU while h lives elsewhere "
                              "(this fails on a GPU): use torch.randn_like(h)")
    return report(name, True, f"E[output]/h = {mean:.3f}, Var[output]/h² = {var:.4f} "
                  f"(p/(1-p) = {p / (1 - p):.4f}) at p = {p}, Gaussian, one eps per element")


def _dropout(h, p=0.5):
    return h * (torch.rand_like(h) >= p) / (1 - p)


@check
def check_noise_moments(fn):
    """Check fn(noise, h, n_draws) -> (mean, se, var): per element of h, the mean of
    n_draws independent draws of noise(h), its standard error, and their variance.

    Fails with a hint on: shapes other than h's (moments over the wrong axis), one
    draw reused (variance 0), the standard deviation given as the standard error,
    fewer draws than asked for, a mean or variance off.
    """
    name = "mc_moments"
    h = torch.tensor([0.0, 1.0, 2.0, 3.0])
    n = 20_000
    drawn = []

    def counting_dropout(x):
        drawn.append(x.numel())
        return _dropout(x)

    with seeded(0):
        result = fn(counting_dropout, h, n)
    if not (isinstance(result, (tuple, list)) and len(result) == 3):
        return report(name, False, "return three tensors: (mean, se, var)")
    mean, se, var = (torch.as_tensor(t).double() for t in result)
    if not mean.shape == se.shape == var.shape == h.shape:
        return report(name, False, f"mean, se and var have shapes {tuple(mean.shape)}, "
                      f"{tuple(se.shape)}, {tuple(var.shape)}; each must have h's shape "
                      f"{tuple(h.shape)}: one estimate per element, over the draws (dim 0)")
    if (var[1:] == 0).all():
        return report(name, False, "variance 0: every draw is the same one. Each draw must "
                      "call the noise anew")
    if sum(drawn) < n * h.numel():
        return report(name, False, f"the noise drew {sum(drawn)} values, fewer than n_draws × "
                      f"h.numel() = {n * h.numel()}: call it on h repeated n_draws times, e.g. "
                      "noise(h.expand(n_draws, *h.shape).contiguous())")
    h2 = h.double() ** 2
    exact_var = h2            # inverted dropout with p = 0.5: p/(1-p)·h² = h²
    exact_se = torch.sqrt(exact_var / n)
    if ((mean - h).abs() > 6 * exact_se + 1e-9).any():
        return report(name, False, f"mean {mean.numpy().round(3)} for dropout on h = "
                      f"{h.numpy()}: should be close to h, the average over the draws (dim 0)")
    if ((var - exact_var).abs() > 0.05 * exact_var + 1e-9).any():
        return report(name, False, f"var {var.numpy().round(3)} for dropout (p = 0.5) on h = "
                      f"{h.numpy()}: should be close to h² = {h2.numpy()}, the variance "
                      "over the draws (dim 0)")
    if torch.allclose(se[1:], torch.sqrt(var[1:]), rtol=0.01):
        return report(name, False, "se equals the standard deviation of ONE draw; the "
                      "standard error of the mean of n draws is std/sqrt(n)")
    if not torch.allclose(se[1:], exact_se[1:], rtol=0.05):
        return report(name, False, f"se {se.numpy()} should be std/sqrt(n_draws) = "
                      f"{exact_se.numpy()}")
    result = fn(lambda x: x + 0.0, h, 100)
    if not (torch.allclose(torch.as_tensor(result[0]).double(), h.double())
            and (torch.as_tensor(result[2]) == 0).all()):
        return report(name, False, "for a noise that returns h unchanged, mean must be h and "
                      "var 0")
    return report(name, True, "per-element mean, standard error std/sqrt(n) and variance over "
                  f"{n} independent draws match inverted dropout's h and h² (p = 0.5)")


@check
def check_noise_unbiased(fn, p=0.5, n=50_000):
    """Run a noise scheme fn(h, p) and say whether it is unbiased, E[fn(h, p)] = h.

    [PASS] if it keeps the shape, is random, and its mean over n draws is within
    5 standard errors of h for every h in a grid of positive values; [FAIL] with
    the measured bias ratio E[output]/h otherwise.
    """
    name = "noise_unbiased"
    levels = torch.linspace(0.25, 2.0, 8)
    h = levels.expand(n, 8).contiguous()
    with seeded(0):
        small = tensor(fn(torch.rand(2, 3, 4) + 0.5, p))
        if small.shape != (2, 3, 4):
            return report(name, False, f"a (2, 3, 4) input came out {tuple(small.shape)}: "
                          "the noise must keep the shape")
        out = tensor(fn(h.clone(), p))
    if out.shape != h.shape or not torch.isfinite(out).all():
        return report(name, False, "the output changed shape or has NaN/inf")
    if torch.equal(out, h):
        return report(name, False, "the output equals h on every draw: there is no noise")
    out = out.double()
    mean, se = out.mean(0), out.std(0) / math.sqrt(n)
    ratio = (out / h).mean().item()
    ratio_se = ((out / h).std() / math.sqrt(out.numel())).item()
    z = ((mean - levels.double()) / se.clamp_min(1e-12)).abs().max().item()
    if z > 5:
        return report(name, False, f"biased: E[output]/h = {ratio:.3f} ± {ratio_se:.3f} over "
                      f"{n} draws at p = {p} (should be 1; worst element {z:.0f} standard "
                      "errors off). Rescale so that the multiplier has mean 1")
    return report(name, True, f"unbiased: E[output]/h = {ratio:.4f} ± {ratio_se:.4f} over "
                  f"{n} draws at p = {p}")


# ---------------------------------------------------------------------------
# The references and the known mistakes (found by the checks' properties;
# tests/test_checks_tables.py walks the tables)
# ---------------------------------------------------------------------------

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
    a = math.sqrt(3 * p / (1 - p))
    return h * (1 + a * (2 * torch.rand_like(h) - 1))


def _bernoulli(h, p):
    return h * (torch.rand_like(h) >= p) / (1 - p)


def _not_implemented(h, p):
    raise NotImplementedError("TODO: h * (1 + sigma * eps)")


def _noise(h, sigma):
    return h * (1 + sigma * torch.randn_like(h))


GAUSSIAN_MISTAKES = [
    Mistake(lambda h, p: _noise(h, math.sqrt(p)), "sigma = sqrt(p)"),
    # Srivastava's (1-q)/q with the drop probability put in for q
    Mistake(lambda h, p: _noise(h, math.sqrt((1 - p) / p)) if p > 0 else h,
            "keep and drop are swapped"),
    Mistake(lambda h, p: _noise(h, p / (1 - p)), "square root is missing"),
    Mistake(lambda h, p: _noise(h, 1.0) if p > 0 else h, "eps is not scaled"),
    # matches the unscaled Bernoulli mask: N(1-p, p(1-p))
    Mistake(lambda h, p: h * ((1 - p) + math.sqrt(p * (1 - p)) * torch.randn_like(h)),
            "the noise is unscaled"),
    Mistake(lambda h, p: h * math.sqrt(p / (1 - p)) * torch.randn_like(h), "you forgot the 1"),
    Mistake(lambda h, p: h + math.sqrt(p / (1 - p)) * torch.randn_like(h), "additive"),
    Mistake(_bernoulli, "Bernoulli dropout"),
    Mistake(uniform_noise, "a Gaussian has 4.6%"),
    Mistake(lambda h, p: h * (1 + math.sqrt(p / (1 - p)) * torch.randn(h.shape[-1],
                                                                         dtype=h.dtype)),
            "shared by the whole batch"),
    Mistake(lambda h, p: h * (1 + math.sqrt(p / (1 - p)) * torch.randn(h.shape, dtype=h.dtype)),
            "on the CPU"),
    Mistake(_not_implemented, "not implemented yet"),
]


def _se_is_std(noise, h, n_draws=100_000):
    mean, _, var = mc_moments(noise, h, n_draws)
    return mean, var.sqrt(), var


def _one_draw_reused(noise, h, n_draws=100_000):
    draws = noise(h).expand(n_draws, *h.shape)
    return draws.mean(0), draws.std(0) / math.sqrt(n_draws), draws.var(0)


def _wrong_axis(noise, h, n_draws=100_000):
    draws = noise(h.expand(n_draws, *h.shape).contiguous())
    return draws.mean(1), draws.std(1) / math.sqrt(h.numel()), draws.var(1)


MOMENTS_MISTAKES = [
    Mistake(_se_is_std, "std/sqrt(n)"),
    Mistake(_one_draw_reused, "every draw is the same one"),
    Mistake(_wrong_axis, "one estimate per element"),
    Mistake(lambda noise, h, n_draws=100_000: mc_moments(noise, h, 100), "fewer than n_draws"),
]
UNBIASED_MISTAKES = [
    Mistake(lambda h, p: h * (torch.rand_like(h) >= p), "biased: E[output]/h = 0.50"),
    Mistake(lambda h, p: h, "there is no noise"),
    Mistake(lambda h, p: h.flatten(), "must keep the shape"),
    Mistake(_not_implemented, "not implemented yet"),
]

MISTAKES = {"gaussian_dropout": GAUSSIAN_MISTAKES, "noise_moments": MOMENTS_MISTAKES,
            "noise_unbiased": UNBIASED_MISTAKES}
REFERENCES = {"gaussian_dropout": gaussian_dropout, "noise_moments": mc_moments,
              "noise_unbiased": uniform_noise}
