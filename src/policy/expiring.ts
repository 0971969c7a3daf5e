// Members that expire a fixed time after they joined, kept in the order they joined: the
// policy server's idle connections (closed after the idle timeout, the one idle longest
// evicted first) and its requests in flight (answered DUNNO at --timeout). One timer for
// the whole set, armed for the oldest member, instead of one timer per member: a request
// answered from memory costs no timer.

/**
 * Timers have millisecond granularity: a member expires up to this many ms early, so that
 * its expiry comes before timers of the same length that it started after (a request's
 * deadline before the lookups and probes its decision started, as one timer per request did).
 */
const EARLY_MS = 2

export class Expiring<T> {
  readonly #joined = new Map<T, number>()
  readonly #ms: number
  readonly #now: () => number
  readonly #expire: (member: T) => void
  #timer?: NodeJS.Timeout

  /** `ms` 0: members never expire. `expire` is called once per member that expires (already removed). */
  constructor(ms: number, now: () => number, expire: (member: T) => void) {
    this.#ms = ms
    this.#now = now
    this.#expire = expire
  }

  get size(): number {
    return this.#joined.size
  }

  /** Join, unless already a member (then it keeps its place and its time). */
  add(member: T): void {
    if (this.#joined.has(member)) return
    this.#joined.set(member, this.#now())
    if (this.#ms > 0 && this.#timer === undefined) this.#arm()
  }

  /** Leave (the timer is left as it is: it finds the next oldest when it fires). */
  delete(member: T): boolean {
    return this.#joined.delete(member)
  }

  has(member: T): boolean {
    return this.#joined.has(member)
  }

  /** The member that joined first. */
  oldest(): T | undefined {
    return this.#joined.keys().next().value
  }

  /** When `member` joined (on `now`'s clock). */
  joined(member: T): number | undefined {
    return this.#joined.get(member)
  }

  #arm(): void {
    const first = this.#joined.values().next()
    if (first.done) return void (this.#timer = undefined)
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, Math.floor(first.value + this.#ms - this.#now()) - EARLY_MS))
    this.#timer.unref() // what a member stands for (a socket) keeps the process alive, not this
  }

  #fire(): void {
    const now = this.#now()
    for (const [member, joined] of this.#joined) {
      if (joined + this.#ms > now + EARLY_MS) break
      this.#joined.delete(member)
      this.#expire(member)
    }
    this.#arm()
  }
}
