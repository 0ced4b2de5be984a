"""Throttling of failed logins, per name and per client address, in the application Redis.

Each failure increments two counters that expire ``window_s`` after the first
failure; once either reaches the limit, logins for that name (or from that
address) are refused until it expires, whether the password is right or not.
"""

from __future__ import annotations

import redis

from nightshift.ops.errors import LoginThrottled

#: Prefix of the counters' keys.
KEY_PREFIX = "nightshift:ops:login_failures:"


class LoginThrottle:
    """Counts failed logins and refuses further tries past a limit.

    Parameters:
      client: The application Redis.
      max_failures: Failures allowed per name and per address within the window.
      window_s: How long failures are remembered.
    """

    def __init__(self, client: redis.Redis[bytes], *, max_failures: int, window_s: int) -> None:
        self.client = client
        self.max_failures = max_failures
        self.window_s = window_s

    def _keys(self, name: str, address: str) -> tuple[str, str]:
        return f"{KEY_PREFIX}name:{name.lower()}", f"{KEY_PREFIX}addr:{address}"

    def check(self, name: str, address: str) -> None:
        """Refuse a login attempt for *name* from *address* while either is locked.

        Raises:
          LoginThrottled: With how long until a new attempt is allowed.
        """
        for key in self._keys(name, address):
            count = self.client.get(key)
            if count is not None and int(count) >= self.max_failures:
                retry = max(int(self.client.ttl(key)), 1)
                raise LoginThrottled(f"too many failed logins; try again in {retry} s", retry)

    def failed(self, name: str, address: str) -> None:
        """Count a failed attempt."""
        with self.client.pipeline(transaction=False) as pipe:
            for key in self._keys(name, address):
                pipe.set(key, 0, ex=self.window_s, nx=True)  # the window starts at the first failure
                pipe.incr(key)
            pipe.execute()

    def succeeded(self, name: str) -> None:
        """Forget *name*'s failures (the address's stay: it may be guessing other names)."""
        self.client.delete(self._keys(name, "")[0])
