// The two ways a run ends with exit status 2 (SPEC §6).

/** A bad word, flag or value: nothing is probed. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** A `--stop` lookup failure or a system error. */
export class FatalError extends Error {
  override name = 'FatalError'
}
