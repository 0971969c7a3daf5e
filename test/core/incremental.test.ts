// Selection never waits for a lookup that cannot change it (SPEC §3, issue 10 defect 2).
// The oracle is written from the SPEC's words as a table, not from selection.ts: the final
// candidates for a set of local entries, and "known" = the same in every completion of the
// lookups still pending (brute force over all of them).
import fc from 'fast-check'
import {afterAll, describe, expect, it} from 'vitest'

import type {AttemptFn} from '../../src/core/attempt.js'
import {check, LOOKUPS_IN_FLIGHT} from '../../src/core/check.js'
import {parseServerList, type Entry} from '../../src/core/grammar.js'
import type {Lookup, Resolver} from '../../src/core/resolve.js'
import {decide, lookupMatters, type Localness} from '../../src/core/selection.js'

/**
 * SPEC §3 as a table: is entry i a candidate when exactly the entries in `local` are the
 * local host? `mustFind`: SPEC §10 (--mx, serve, with --stop): "if no MX entry is the local
 * host … nothing is known to be more preferred than this host: exit 0".
 */
function specCandidate(prios: ReadonlyArray<number | undefined>, local: readonly boolean[], i: number, mustFind = false): boolean {
  if (local[i]) return false
  const localIdx = prios.flatMap((_, j) => (local[j] ? [j] : []))
  if (localIdx.length === 0) return !mustFind // no entry is the local host
  const firstLocal = localIdx[0]
  const localPrios = localIdx.flatMap((j) => (prios[j] === undefined ? [] : [prios[j]!]))
  if (localPrios.length > 0) {
    const P = Math.min(...localPrios) // the local host has priority P
    return prios[i] !== undefined ? prios[i]! < P : i < firstLocal
  }
  return i < firstLocal // the local host has no priority
}

/** Every completion of the pending lookups: each pending entry local or not. */
function completions(known: readonly Localness[]): boolean[][] {
  const open = known.flatMap((k, j) => (k === undefined ? [j] : []))
  const all: boolean[][] = []
  for (let mask = 0; mask < 1 << open.length; mask++) all.push(known.map((k, j) => (k === undefined ? Boolean(mask & (1 << open.indexOf(j))) : k)))
  return all
}

/** Brute force: the fate of entry i if it is the same in every completion of the pending lookups. */
function knownFate(prios: ReadonlyArray<number | undefined>, known: readonly Localness[], i: number, mustFind = false): 'candidate' | 'excluded' | undefined {
  const fates = new Set(completions(known).map((local) => specCandidate(prios, local, i, mustFind)))
  return fates.size === 2 ? undefined : fates.has(true) ? 'candidate' : 'excluded'
}

const prioArb = fc.option(fc.integer({min: 0, max: 4}), {nil: undefined}) // few values: equal priorities are common
const listArb = fc.array(fc.record({prio: prioArb, known: fc.constantFrom<Localness>(true, false, undefined)}), {maxLength: 8})

const hits = new Map<string, number>()
const hit = (branch: string) => hits.set(branch, (hits.get(branch) ?? 0) + 1)
afterAll(() => {
  const branches = ['prio/candidate', 'prio/excluded', 'prio/pending', 'bare/candidate', 'bare/excluded', 'bare/pending', 'prio/pending-behind-bare-local']
  for (const branch of [...branches, ...branches.slice(0, 6).map((b) => `must-find ${b}`), 'must-find excluded, none known local', 'lookup skipped', 'lookup kept', 'long list: names never asked']) {
    expect(hits.get(branch) ?? 0, `generated cases reaching ${branch}`).toBeGreaterThan(20)
  }
})

/** A generated list as decide() takes it (entries, what is known of each) and as the oracle does (priorities). */
function caseOf(list: ReadonlyArray<{prio: number | undefined; known: Localness}>) {
  const entries = list.map((e, index): Entry => ({name: `n${index}`, host: `n${index}`, kind: 'name', prio: e.prio, index}))
  return {entries, prios: list.map((e) => e.prio), known: list.map((e) => e.known)}
}

describe('decide(): exactly the fates every completion of the pending lookups agrees on', () => {
  it('matches the brute-force oracle over mixed prio/no-prio lists', () => {
    fc.assert(
      fc.property(listArb, (list) => {
        const {entries, prios, known} = caseOf(list)
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

  it('with the local host to be found (SPEC §10): matches the brute-force oracle', () => {
    fc.assert(
      fc.property(listArb, (list) => {
        const {entries, prios, known} = caseOf(list)
        const got = decide(entries, known, true)
        for (let i = 0; i < list.length; i++) {
          const want = knownFate(prios, known, i, true)
          hit(`must-find ${prios[i] === undefined ? 'bare' : 'prio'}/${want ?? 'pending'}`)
          if (want === 'excluded' && !known.includes(true) && known.includes(undefined)) hit('must-find excluded, none known local')
          expect(got[i], `entry ${i} of ${JSON.stringify(list)}`).toBe(want)
        }
      }),
      {numRuns: 3000},
    )
  })
})

describe('lookupMatters(): a lookup it skips can change nothing', () => {
  it('a pending entry it skips is excluded, and its answer changes no entry\'s fate in any completion (both rules)', () => {
    fc.assert(
      fc.property(listArb, fc.boolean(), (list, mustFind) => {
        const {entries, prios, known} = caseOf(list)
        const decisions = decide(entries, known, mustFind)
        const matters = lookupMatters(entries, known, decisions)
        for (let i = 0; i < list.length; i++) {
          if (known[i] !== undefined) continue
          if (matters(i)) {
            hit('lookup kept')
            continue
          }
          hit('lookup skipped')
          expect(decisions[i], `n${i} skipped but not excluded in ${JSON.stringify(list)}`).toBe('excluded')
          for (const local of completions(known)) {
            const flipped = local.map((l, j) => (j === i ? !l : l))
            const fates = (l: boolean[]) => prios.map((_, j) => specCandidate(prios, l, j, mustFind))
            expect(fates(flipped), `n${i} skipped but it matters in ${JSON.stringify(list)} (${mustFind ? 'must find' : 'any'})`).toEqual(fates(local))
          }
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
      fc.asyncProperty(caseArb, fc.boolean(), fc.boolean(), async ([list, outcome, order], sequential, mustFind) => {
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
        const done = check({entries, stops: [{address: stop}], mustFindLocal: mustFind, timeoutMs: 0, port: 25, attemptDelayMs: 250, sequential}, {resolver, attempt, now: () => performance.now()})
        const known: Localness[] = list.map(() => undefined)
        const prios = list.map((e) => e.prio)
        for (const i of order) {
          await tick()
          // Never earlier: only entries whose fate is known as 'candidate' have been probed.
          for (const p of probed) expect(knownFate(prios, known, p, mustFind), `probed n${p} too early`).toBe('candidate')
          // Not later (concurrent mode): every known candidate whose addresses are probe-able is probed.
          if (!sequential) for (let j = 0; j < list.length; j++) if (knownFate(prios, known, j, mustFind) === 'candidate' && outcome[j] === false) expect(probed.has(j), `n${j} known candidate, not probed`).toBe(true)
          if (!stepped.pending().includes(`n${i}.test`)) continue // torn down: nothing can depend on it any more
          stepped.answer(`n${i}.test`, outcome[i])
          known[i] = outcome[i] === true
        }
        const report = await done
        const want = list.map((_, j) => specCandidate(prios, known.map((k) => k === true), j, mustFind))
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

describe('check(): lookups in preference order, at most LOOKUPS_IN_FLIGHT at once (SPEC §3)', () => {
  it('over random long lists: started in preference order, never more in flight than the bound, the selection the SPEC\'s', async () => {
    const itemArb = fc.record({prio: prioArb, local: fc.boolean(), delay: fc.integer({min: 0, max: 3})})
    await fc.assert(
      fc.asyncProperty(fc.array(itemArb, {minLength: 33, maxLength: 120}), fc.boolean(), async (list, mustFind) => {
        // Few local entries, so that a long stretch stays to be decided.
        const items = list.map((item, i) => ({...item, local: item.local && i % 9 === 0}))
        const words = items.map((e, i) => (e.prio === undefined ? `n${i}.test` : `${e.prio}:n${i}.test`))
        const started: number[] = []
        let inFlight = 0
        let most = 0
        const resolver: Resolver = (name, signal) => {
          const i = Number(/^n(\d+)/.exec(name)![1])
          started.push(i)
          most = Math.max(most, ++inFlight)
          return new Promise((resolve) => {
            const done = (lookup: Lookup) => (clearTimeout(timer), inFlight--, resolve(lookup))
            const timer = setTimeout(() => done({outcome: 'resolved', addresses: [items[i].local ? '192.0.2.99' : `198.51.100.${i % 250}`]}), items[i].delay)
            signal.addEventListener('abort', () => done({outcome: 'dns-error', addresses: [], error: 'cancelled'}), {once: true})
          })
        }
        const attempt: AttemptFn = async () => ({outcome: 'refused'})
        const entries = parseServerList(words)
        const report = await check({entries, stops: [{address: '192.0.2.99'}], mustFindLocal: mustFind, timeoutMs: 0, port: 25, attemptDelayMs: 250, sequential: false}, {resolver, attempt, now: () => performance.now()})
        expect(most).toBeLessThanOrEqual(LOOKUPS_IN_FLIGHT)
        if (started.length < entries.length) hit('long list: names never asked')
        const key = (i: number) => [items[i].prio ?? -1, i]
        for (let k = 1; k < started.length; k++) {
          const [a, b] = [key(started[k - 1]), key(started[k])]
          expect(a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]), `n${started[k - 1]} started before n${started[k]}`).toBe(true)
        }
        // Entries never asked for are taken as not the local host: they must not have mattered.
        const local = items.map((e) => e.local)
        const want = items.flatMap((_, j) => (specCandidate(items.map((e) => e.prio), local, j, mustFind) ? [j] : []))
        expect(report.selection.candidates.map((e) => e.index)).toEqual(want)
      }),
      {numRuns: 150},
    )
  })

  it('a lookup\'s budget starts when it starts: waiting for a turn is not charged to it', async () => {
    // 40 names at 1..40 that never answer (each ends by its 300 ms budget), then z at 50 up, this host at 60.
    const words = [...Array.from({length: 40}, (_, i) => `${i + 1}:hung${i}.test`), '50:z.test', '60:192.0.2.99']
    const resolver: Resolver = (name, signal) => new Promise((resolve) => {
      if (name === 'z.test') return resolve({outcome: 'resolved', addresses: ['198.51.100.1']})
      signal.addEventListener('abort', () => resolve({outcome: 'dns-error', addresses: [], error: 'ETIMEOUT'}), {once: true})
    })
    const attempt: AttemptFn = async () => ({outcome: 'available', line: '220 z'})
    const report = await check(
      {entries: parseServerList(words), stops: [{address: '192.0.2.99'}], timeoutMs: 300, port: 25, attemptDelayMs: 250, sequential: false},
      {resolver, attempt, now: () => performance.now()},
    )
    const z = [...report.lookups].find(([entry]) => entry.name === 'z.test')![1]
    expect(z.startMs).toBeGreaterThanOrEqual(290) // its turn came when the first 32 ran out
    expect(z.outcome).toBe('resolved')
    expect(report.winner?.name).toBe('z.test')
  })
})
