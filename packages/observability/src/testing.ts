// parse-prometheus-text-format ships no types; this is the part of its output the tests read.
// @ts-expect-error -- untyped CommonJS module
import parsePrometheusTextFormat from 'parse-prometheus-text-format'

interface Sample {
  value?: string
  count?: string
  sum?: string
  buckets?: Record<string, string>
  labels?: Record<string, string>
}
interface Family {
  name: string
  type: string
  metrics: Sample[]
}

/**
 * A parsed `/metrics` scrape, for tests: sample lookups by metric name and labels.
 *
 * @example
 * const m: ParsedMetrics = parseMetrics(await (await fetch(`${url}/metrics`)).text())
 */
export interface ParsedMetrics {
  names: string[]
  value(name: string, labels?: Record<string, string>): number
  histogram(name: string): { count: number; sum: number }
  histogramCount(name: string, labels: Record<string, string>): number
  labelValues(name: string, label: string): string[]
}

/**
 * Parses Prometheus text exposition (with `parse-prometheus-text-format`) for tests that check
 * what a running service reports.
 *
 * @example
 * expect(parseMetrics(text).value('care_http_requests_total', { route: '/infer', status: '200' })).toBe(3)
 */
export function parseMetrics(text: string): ParsedMetrics {
  const families = (parsePrometheusTextFormat as (t: string) => Family[])(text)
  const family = (name: string) => families.find((f) => f.name === name)
  const matches = (sample: Sample, labels: Record<string, string>) =>
    Object.entries(labels).every(([k, v]) => sample.labels?.[k] === v)
  return {
    names: families.map((f) => f.name),
    /** The value of a counter or gauge sample, 0 when absent. */
    value(name: string, labels: Record<string, string> = {}): number {
      const sample = family(name)?.metrics.find((m) => matches(m, labels))
      return sample?.value === undefined ? 0 : Number(sample.value)
    },
    /** Count and sum of an unlabelled histogram. */
    histogram(name: string): { count: number; sum: number } {
      const sample = family(name)?.metrics[0]
      return { count: Number(sample?.count ?? 0), sum: Number(sample?.sum ?? 0) }
    },
    /**
     * `<name>_count` of a labelled histogram, read from the text itself: the parser merges a
     * labelled histogram's samples and drops their labels.
     */
    histogramCount(name: string, labels: Record<string, string>): number {
      let total = 0
      for (const line of text.split('\n')) {
        if (!line.startsWith(`${name}_count{`)) continue
        if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
          total += Number(line.split(' ').at(-1))
      }
      return total
    },
    /** Every label value a metric uses for `label`. */
    labelValues(name: string, label: string): string[] {
      return (family(name)?.metrics ?? []).map((m) => m.labels?.[label] ?? '')
    },
  }
}
