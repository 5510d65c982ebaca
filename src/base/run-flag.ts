/**
 * A flag that holds for the run of JavaScript now going on: raised, it is lowered again when the
 * run ends (at the next `process.nextTick`). What a check found stays true while no other code of
 * this process can run in between; another process's change is seen by the first check of the
 * next run. @internal
 */
export class RunFlag {
  private raised = false;
  private readonly endOfRun = (): void => {
    this.raised = false;
  };

  /** True once raised in this run. */
  get up(): boolean {
    return this.raised;
  }

  /** Raises the flag until the end of this run. */
  raise(): void {
    if (this.raised) return;
    this.raised = true;
    process.nextTick(this.endOfRun);
  }

  /** Lowers it now: the next check looks again. */
  lower(): void {
    this.raised = false;
  }
}
