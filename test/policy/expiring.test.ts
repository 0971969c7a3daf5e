// Expiring (src/policy/expiring.ts): members expire in join order, with one timer, on real
// timers (generous bounds only).
import {setTimeout as sleep} from 'node:timers/promises'
import {describe, expect, it} from 'vitest'

import {Expiring} from '../../src/policy/expiring.js'

const now = () => performance.now()

describe('Expiring', () => {
  it('expires each member about `ms` after it joined, oldest first; a member that left never expires; joining again keeps the first time', async () => {
    const expired: Array<[string, number]> = []
    const t0 = now()
    const set = new Expiring<string>(150, now, (m) => expired.push([m, now() - t0]))
    set.add('a')
    await sleep(60)
    set.add('b')
    set.add('c')
    set.add('a') // already a member: keeps its place and time
    set.delete('c')
    expect(set.oldest()).toBe('a')
    expect(set.joined('b')! - set.joined('a')!).toBeGreaterThanOrEqual(50)
    await sleep(400)
    expect(expired.map(([m]) => m)).toEqual(['a', 'b'])
    expect(expired[0][1]).toBeGreaterThanOrEqual(140)
    expect(expired[1][1]).toBeGreaterThanOrEqual(140 + 50)
    expect(set.size).toBe(0)
  })

  it('the timer finds the next oldest when the oldest left before it fired', async () => {
    const expired: string[] = []
    const set = new Expiring<string>(100, now, (m) => expired.push(m))
    set.add('gone')
    await sleep(50)
    set.add('stays')
    set.delete('gone')
    await sleep(80) // the timer fired for 'gone' (absent): nothing expires yet
    expect(expired).toEqual([])
    await sleep(200)
    expect(expired).toEqual(['stays'])
  })

  it('ms 0: nothing expires', async () => {
    const expired: string[] = []
    const set = new Expiring<string>(0, now, (m) => expired.push(m))
    set.add('a')
    await sleep(50)
    expect(expired).toEqual([])
    expect(set.has('a')).toBe(true)
  })
})
