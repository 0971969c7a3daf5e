// The README stands on its own: the contract it links is in the repository (and the package).
import {existsSync, readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'

describe('docs/SPEC.md', () => {
  // The contract lives in the project's shared/ folder; the repository carries a copy so that
  // the README's link works in a clone and in the package. Where shared/ is beside the clone
  // (CI), the copy must be the same text: copy it again when the contract changes.
  const shared = new URL('../../shared/SPEC.md', import.meta.url)
  it.skipIf(!existsSync(shared))('is the contract in shared/, word for word', () => {
    expect(readFileSync(new URL('../docs/SPEC.md', import.meta.url), 'utf8')).toBe(readFileSync(shared, 'utf8'))
  })
})
