/**
 * A min-heap of (deadline, session_id). Entries are never updated in place: a touch pushes a
 * newer deadline and the stale one is discarded when it comes due, so every operation is O(log n).
 */
export class ExpirySchedule {
  private readonly deadlines: number[] = []
  private readonly ids: string[] = []

  get size(): number {
    return this.deadlines.length
  }

  /** The earliest deadline, or undefined when nothing is scheduled. */
  peek(): number | undefined {
    return this.deadlines[0]
  }

  push(deadline: number, sessionId: string): void {
    this.deadlines.push(deadline)
    this.ids.push(sessionId)
    this.siftUp(this.deadlines.length - 1)
  }

  /** Removes and returns the session ids (at most `limit`) whose deadline is at or before `now`. */
  popDue(now: number, limit = Number.POSITIVE_INFINITY): string[] {
    const due: string[] = []
    while (due.length < limit && this.deadlines.length > 0 && this.deadlines[0]! <= now) {
      due.push(this.ids[0]!)
      this.removeRoot()
    }
    return due
  }

  private removeRoot(): void {
    const lastDeadline = this.deadlines.pop()!
    const lastId = this.ids.pop()!
    if (this.deadlines.length === 0) return
    this.deadlines[0] = lastDeadline
    this.ids[0] = lastId
    this.siftDown(0)
  }

  private siftUp(index: number): void {
    let i = index
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (this.deadlines[parent]! <= this.deadlines[i]!) break
      this.swap(i, parent)
      i = parent
    }
  }

  private siftDown(index: number): void {
    const n = this.deadlines.length
    let i = index
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let smallest = i
      if (left < n && this.deadlines[left]! < this.deadlines[smallest]!) smallest = left
      if (right < n && this.deadlines[right]! < this.deadlines[smallest]!) smallest = right
      if (smallest === i) return
      this.swap(i, smallest)
      i = smallest
    }
  }

  private swap(a: number, b: number): void {
    const d = this.deadlines[a]!
    this.deadlines[a] = this.deadlines[b]!
    this.deadlines[b] = d
    const id = this.ids[a]!
    this.ids[a] = this.ids[b]!
    this.ids[b] = id
  }
}
