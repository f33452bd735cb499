// Preloaded into the service by the RSS benchmark (`--expose-gc --import`): on SIGUSR2 it runs a full
// GC and prints the live heap, so the benchmark can tell live data from V8's heap headroom.
process.on('SIGUSR2', () => {
  globalThis.gc?.()
  globalThis.gc?.()
  const m = process.memoryUsage()
  console.log(
    JSON.stringify({ msg: 'heap-report', heap_used: m.heapUsed, heap_total: m.heapTotal, rss: m.rss }),
  )
})
