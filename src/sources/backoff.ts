/** Exponential backoff with jitter: attempt 1 waits ~initial, each further attempt doubles, capped at max. */
export function backoffDelayMs(
  attempt: number,
  policy: { initialDelayMs: number; maxDelayMs: number; jitter: number },
  random: () => number = Math.random,
): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, attempt - 1));
  const spread = base * policy.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(base + spread));
}
