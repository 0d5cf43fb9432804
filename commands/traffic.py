"""Traffic maths: how MSE and NGINX weights become a share of traffic, and back.

Both the SLB and the DNS method split traffic in proportion to total weights:
MSE share = MSE total / (MSE total + NGINX total). NGINX's total is 100 unless
lowered (the Service's `-weight` annotation, or the NGINX DNS records' weight),
which is the only way past 50%.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_WEIGHT = 100
DEFAULT_NGINX_WEIGHT = 100
BAR_CELLS = 10


@dataclass(frozen=True)
class Weights:
    """Both sides of the split; `mse` and `nginx` are totals in 0..100."""

    mse: int
    nginx: int = DEFAULT_NGINX_WEIGHT

    @property
    def share(self) -> float:
        """MSE's share of traffic in percent (0.0 when both sides are 0)."""
        return mse_share(self.mse, self.nginx)

    def describe(self) -> str:
        return f"MSE weight {self.mse} / NGINX weight {self.nginx} = {format_share(self.share)} on MSE"


def mse_share(mse: int, nginx: int) -> float:
    total = mse + nginx
    return 0.0 if total <= 0 else 100.0 * mse / total


def format_share(share: float) -> str:
    """Whole percent, except that a non-zero share never reads as 0% or 100%."""
    if 0 < share < 1:
        return f"{share:.1f}%"
    if 99 < share < 100:
        return f"{share:.1f}%"
    return f"{round(share)}%"


def weights_for_share(percent: float, *, nginx_floor: int = 0) -> Weights:
    """The weights that give `percent` of traffic to MSE.

    Up to 50% only MSE's weight rises (NGINX stays at 100); above it MSE stays at 100 and
    NGINX's weight is lowered, as the procedure describes. `nginx_floor` is the lowest
    NGINX weight the method can express short of cutover (DNS weights start at 1).
    """
    if not 0 <= percent <= 100:
        raise ValueError("share must be within 0..100")
    if percent <= 50:
        mse = round(DEFAULT_NGINX_WEIGHT * percent / (100 - percent)) if percent else 0
        return Weights(mse=min(mse, MAX_WEIGHT), nginx=DEFAULT_NGINX_WEIGHT)
    nginx = round(MAX_WEIGHT * (100 - percent) / percent)
    return Weights(mse=MAX_WEIGHT, nginx=max(nginx, nginx_floor))


def share_bar(share: float, *, cells: int = BAR_CELLS) -> str:
    """`MSE ██░░░░░░░░ 9%`: a bar that stays legible on a phone.

    Any non-zero share shows at least one filled cell, so 1% is not mistaken for 0%.
    """
    filled = round(share * cells / 100)
    if share > 0:
        filled = max(filled, 1)
    if share < 100:
        filled = min(filled, cells - 1) if share > 0 else 0
    return f"MSE {'█' * filled}{'░' * (cells - filled)} {format_share(share)}"


def is_increase(before: Weights, after: Weights) -> bool:
    """Whether MSE's share goes up: only increases wait for the dwell."""
    return after.share > before.share + 1e-9


def spread(total: int, count: int) -> list[int]:
    """Spread a total weight over `count` backends as evenly as integers allow.

    The sum is exactly `total`, so what the SLB holds adds up to what was asked.
    """
    if count <= 0:
        return []
    base, extra = divmod(total, count)
    return [base + (1 if i < extra else 0) for i in range(count)]
