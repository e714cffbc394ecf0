/**
 * Whether the FUSE server may poll /dev/fuse before its blocking read. The poll saves the wake-up
 * of an idle CPU when the caller's next request follows at once; on a busy machine it takes CPU
 * time the callers need (measured: random 4 KiB reads at load ~8 on 2 cores read faster and cost
 * the daemon about half the CPU without it). So it is allowed only while the CPU pressure (PSI
 * "some avg10") stays low, with hysteresis, checked at most every `everyNs`.
 */
export class SpinGate {
  private nextCheck = 0n;
  private open = true;

  constructor(
    /** Current CPU pressure in percent, or undefined when unknown (the gate then stays as it is). */
    private readonly pressure: () => number | undefined,
    /** Close at or above this pressure... */
    private readonly offAt = 40,
    /** ...and open again below this one. */
    private readonly onBelow = 20,
    private readonly everyNs = 200_000_000n,
  ) {}

  allowed(now: bigint): boolean {
    if (now >= this.nextCheck) {
      this.nextCheck = now + this.everyNs;
      const p = this.pressure();
      if (p !== undefined) {
        if (this.open && p >= this.offAt) this.open = false;
        else if (!this.open && p < this.onBelow) this.open = true;
      }
    }
    return this.open;
  }
}
