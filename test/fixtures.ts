// Fixtures a test starts are closed after it, whatever the test did.
import {afterEach} from 'vitest'

/** Call at the top of a test file; `keep(startSmtp(…))` starts a fixture and closes it after the test. */
export function closedAfterEach() {
  const open: Array<{close: () => Promise<void>}> = []
  afterEach(async () => {
    for (const fixture of open.splice(0)) await fixture.close()
  })
  return async function keep<T extends {close: () => Promise<void>}>(starting: Promise<T>): Promise<T> {
    const fixture = await starting
    open.push(fixture)
    return fixture
  }
}
