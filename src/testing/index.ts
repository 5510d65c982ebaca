/**
 * Temp files for test suites: each test gets a {@link TempScope} whose files are gone when the
 * test ends, passed or failed, and what a killed run left (its runner SIGKILLed, a CI job
 * cancelled) is swept by the next run. {@link tempScopeFixture} is a fixture for vitest's
 * `test.extend()`, {@link tempScopeFor} a helper for `node:test`; neither runner is a dependency
 * (docs/testing.md).
 *
 * @packageDocumentation
 * @module tempfile-manager/testing
 */
export { tempScopeFixture, tempScopeFor } from './fixture.js';
export type { TempScopeFixture, TestContextWithAfter, TestScopeOptions } from './fixture.js';
