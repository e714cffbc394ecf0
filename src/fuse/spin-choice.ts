/**
 * Whether the FUSE server's poll before a blocking read pays, decided by measuring both ways on
 * the requests being served. Measured on a 2-vCPU VM: when the other CPU is idle, a server thread
 * that sleeps in read(2) is woken on it (a halted vCPU: tens of microseconds), and the poll wins
 * (memfs lookup 87 -> 46 us on the quiet machine); when the CPUs are busy, or the caller and a
 * sleeping server share one CPU (the scheduler places the woken server beside its caller), the
 * poll only takes CPU time from the caller and moves it to the other CPU, and blocking at once
 * wins (random 4 KiB reads 58 -> 38 us, getattr 35-40 -> 29-32 us, at CPU pressure 10-60%).
 * Neither the pressure nor the load tells which case holds, so this alternates the two for a few
 * windows of requests, keeps the one whose requests came faster, and asks again later.
 * The server uses it only with FUSE_SPIN_ADAPT=1: in quick benches it was not faster (PERFORMANCE.md).
 */
export class SpinChoice {
  /** Poll before the next blocking read. */
  spin = true;
  private probing = true;
  /** Requests counted in the current window (probing) or since the choice (not probing). */
  private count = 0;
  /** Windows done in this probe. */
  private windows = 0;
  private acc = 0;
  /** Time per request of each way in this probe: [blocking at once, polling]. */
  private readonly sum = [0, 0];
  private last = -1;
  /** Probes finished, and how many of them chose to poll (for the stats). */
  probes = 0;
  chosePoll = 0;

  constructor(
    /** Requests per measuring window. */
    private readonly window = 64,
    /** Windows per way in one probe (alternating). */
    private readonly rounds = 2,
    /** Requests served the chosen way before the next probe. */
    private readonly keep = 4096,
    /** Longest gap between two requests that is counted (ms): round trips take 20-200 us. */
    private readonly maxGapMs = 1,
  ) {}

  /** A request was read at `now` (milliseconds, any monotonic origin). */
  request(now: number): void {
    const last = this.last;
    this.last = now;
    // The first request after a pause has no gap to count, nor has one after a longer gap: the
    // caller was doing something else (an idle pause says nothing about either way).
    const gap = now - last;
    if (last < 0 || gap > this.maxGapMs) return;
    if (!this.probing) {
      if (++this.count >= this.keep) this.startProbe();
      return;
    }
    this.acc += gap;
    if (++this.count < this.window) return;
    this.sum[this.spin ? 1 : 0] += this.acc;
    this.acc = 0;
    this.count = 0;
    if (++this.windows < 2 * this.rounds) {
      this.spin = !this.spin;
      return;
    }
    this.spin = this.sum[1] <= this.sum[0];
    this.probing = false;
    this.probes++;
    if (this.spin) this.chosePoll++;
  }

  /** The serving thread stops reading for a while (the event loop's turn): the next gap is not a request's. */
  pause(): void {
    this.last = -1;
  }

  private startProbe(): void {
    this.probing = true;
    this.count = 0;
    this.windows = 0;
    this.acc = 0;
    this.sum[0] = this.sum[1] = 0;
    // Begin with the way not in use, so both are measured in the same minutes.
    this.spin = !this.spin;
  }
}
