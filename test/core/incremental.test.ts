// Selection never waits for a lookup that cannot change it (SPEC §3, issue 10 defect 2).
// The oracle is written from the SPEC's words as a table, not from selection.ts: the final
// candidates for a set of local entries, and "known" = the same in every completion of the
// lookups still pending (brute force over all of them).
import fc from 'fast-check'
import {afterAll, describe, expect, it} from 'vitest'

import type {AttemptFn} from '../../src/core/attempt.js'
import {check} from '../../src/core/check.js'
import {parseServerList, type Entry} from '../../src/core/grammar.js'
import type {Lookup, Resolver} from '../../src/core/resolve.js'
import {decide, type Localness} from '../../src/core/selection.js'

/** SPEC §3 as a table: is entry i a candidate when exactly the entries in `local` are the local host? */
function specCandidate(prios: ReadonlyArray<number | undefined>, local: readonly boolean[], i: number): boolean {
  if (local[i]) return false
  const localIdx = prios.flatMap((_, j) => (local[j] ? [j] : []))
  if (localIdx.length === 0) return true // no entry is the local host
  const firstLocal = localIdx[0]
  const localPrios = localIdx.flatMap((j) => (prios[j] === undefined ? [] : [prios[j]!]))
  if (localPrios.length > 0) {
    const P = Math.min(...localPrios) // the local host has priority P
    return prios[i] !== undefined ? prios[i]! < P : i < firstLocal
  }
  return i < firstLocal // the local host has no priority
}

/** Brute force: the fate of entry i if it is the same in every completion of the pending lookups. */
function knownFate(prios: ReadonlyArray<number | undefined>, known: readonly Localness[], i: number): 'candidate' | 'excluded' | undefined {
  const open = known.flatMap((k, j) => (k === undefined ? [j] : []))
  const fates = new Set<boolean>()
  for (let mask = 0; mask < 1 << open.length; mask++) {
    const local = known.map((k, j) => (k === undefined ? Boolean(mask & (1 << open.indexOf(j))) : k))
    fates.add(specCandidate(prios, local, i))
  }
  return fates.size === 2 ? undefined : fates.has(true) ? 'candidate' : 'excluded'
}

const prioArb = fc.option(fc.integer({min: 0, max: 4}), {nil: undefined}) // few values: equal priorities are common
const listArb = fc.array(fc.record({prio: prioArb, known: fc.constantFrom<Localness>(true, false, undefined)}), {maxLength: 8})

const hits = new Map<string, number>()
const hit = (branch: string) => hits.set(branch, (hits.get(branch) ?? 0) + 1)
afterAll(() => {
  for (const branch of ['prio/candidate', 'prio/excluded', 'prio/pending', 'bare/candidate', 'bare/excluded', 'bare/pending', 'prio/pending-behind-bare-local']) {
    expect(hits.get(branch) ?? 0, `generated cases reaching ${branch}`).toBeGreaterThan(20)
  }
})

describe('decide(): exactly the fates every completion of the pending lookups agrees on', () => {
  it('matches the brute-force oracle over mixed prio/no-prio lists', () => {
    fc.assert(
      fc.property(listArb, (list) => {
        const entries = list.map((e, index): Entry => ({name: `n${index}`, host: `n${index}`, kind: 'name', prio: e.prio, index}))
        const prios = list.map((e) => e.prio)
        const known = list.map((e) => e.known)
        const got = decide(entries, known)
        for (let i = 0; i < list.length; i++) {
          const want = knownFate(prios, known, i)
          hit(`${prios[i] === undefined ? 'bare' : 'prio'}/${want ?? 'pending'}`)
          // A prio entry waiting although every entry of priority <= its own is settled: the mixed case.
          if (want === undefined && prios[i] !== undefined && known[i] === false &&
              known.every((k, j) => prios[j] === undefined || prios[j]! > prios[i]! || k !== undefined)) hit('prio/pending-behind-bare-local')
          expect(got[i], `entry ${i} of ${JSON.stringify(list)}`).toBe(want)
        }
      }),
      {numRuns: 3000},
    )
  })
})

/** A resolver whose answers the test releases one by one. */
function steppedResolver(stopAddress: string) {
  const waiting = new Map<string, (lookup: Lookup) => void>()
  const resolver: Resolver = (name) => new Promise((resolve) => waiting.set(name, resolve))
  return {
    resolver,
    answer(name: string, local: boolean | 'fail') {
      const resolve = waiting.get(name)!
      waiting.delete(name)
      resolve(local === 'fail' ? {outcome: 'dns-error', addresses: [], error: 'SERVFAIL'} : {outcome: 'resolved', addresses: [local ? stopAddress : '192.0.2.200']})
    },
    pending: () => [...waiting.keys()],
  }
}
const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('check(): a candidate is probed when its fate is known, not earlier, not later', () => {
  it('over random lists and random orders of lookups ending (fake resolver and attempt)', async () => {
    const caseArb = listArb
      .chain((list) => fc.tuple(fc.constant(list), fc.array(fc.constantFrom<boolean | 'fail'>(true, false, false, 'fail'), {minLength: list.length, maxLength: list.length}), fc.shuffledSubarray([...list.keys()], {minLength: list.length})))
    await fc.assert(
      fc.asyncProperty(caseArb, fc.boolean(), async ([list, outcome, order], sequential) => {
        const stop = '192.0.2.99'
        const words = list.map((e, i) => (e.prio === undefined ? `n${i}.test` : `${e.prio}:n${i}.test`))
        const stepped = steppedResolver(stop)
        const probed = new Set<number>()
        // Every probe fails ('refused') so that every candidate is probed.
        const attempt: AttemptFn = async (address) => (probed.add(Number(address.split('.')[3]) - 0), {outcome: 'refused'})
        const entries = parseServerList(words)
        // Each entry resolves to its own address so that the fake attempt knows which one it probed.
        const resolver: Resolver = async (name, signal) => {
          const lookup = await stepped.resolver(name, signal)
          const i = Number(/^n(\d+)/.exec(name)![1])
          return lookup.addresses[0] === '192.0.2.200' ? {...lookup, addresses: [`198.51.100.${i}`]} : lookup
        }
        const done = check({entries, stops: [{address: stop}], timeoutMs: 0, port: 25, attemptDelayMs: 250, sequential}, {resolver, attempt, now: () => performance.now()})
        const known: Localness[] = list.map(() => undefined)
        const prios = list.map((e) => e.prio)
        for (const i of order) {
          await tick()
          // Never earlier: only entries whose fate is known as 'candidate' have been probed.
          for (const p of probed) expect(knownFate(prios, known, p), `probed n${p} too early`).toBe('candidate')
          // Not later (concurrent mode): every known candidate whose addresses are probe-able is probed.
          if (!sequential) for (let j = 0; j < list.length; j++) if (knownFate(prios, known, j) === 'candidate' && outcome[j] === false) expect(probed.has(j), `n${j} known candidate, not probed`).toBe(true)
          if (!stepped.pending().includes(`n${i}.test`)) continue // torn down: nothing can depend on it any more
          stepped.answer(`n${i}.test`, outcome[i])
          known[i] = outcome[i] === true
        }
        const report = await done
        const want = list.map((_, j) => specCandidate(prios, known.map((k) => k === true), j))
        expect(report.selection.candidates.map((e) => e.index).sort()).toEqual(want.flatMap((c, j) => (c ? [j] : [])))
        expect([...probed].sort()).toEqual(want.flatMap((c, j) => (c && outcome[j] === false ? [j] : [])))
      }),
      {numRuns: 300},
    )
  })
})

describe('check(): budgets', () => {
  it('time spent waiting for another entry\'s lookup is not charged to a candidate\'s budget', async () => {
    // --stop 192.0.2.99 10:a 10:b: a resolves at once, b (could be the local host) after 400 ms;
    // a's server greets 400 ms after it is connected to. The budget is 600 ms: a is available.
    const resolver: Resolver = (name) =>
      new Promise((resolve) => setTimeout(() => resolve({outcome: 'resolved', addresses: [name === 'a.test' ? '198.51.100.1' : '198.51.100.2']}), name === 'a.test' ? 0 : 400))
    const started: number[] = []
    const t0 = performance.now()
    const attempt: AttemptFn = (_address, _port, signal) =>
      new Promise((resolve) => {
        started.push(performance.now() - t0)
        const timer = setTimeout(() => resolve({outcome: 'available', line: '220 a'}), 400)
        signal.addEventListener('abort', () => (clearTimeout(timer), resolve({outcome: 'greeting-timeout'})), {once: true})
      })
    const report = await check(
      {entries: parseServerList(['10:a.test', '10:b.test']), stops: [{address: '192.0.2.99'}], timeoutMs: 600, port: 25, attemptDelayMs: 250, sequential: false},
      {resolver, attempt, now: () => performance.now()},
    )
    expect(started[0]).toBeGreaterThanOrEqual(390) // a waited for b (equal priority: b could exclude it)
    expect(report.winner?.name).toBe('a.test')
  })
})
