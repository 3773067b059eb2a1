// Numbers, durations and ages as people read them.

/** Seconds as "850 µs", "12.3 ms", "1.20 s", "2 min 5 s". */
export function duration(seconds) {
  if (seconds === undefined || seconds === null || Number.isNaN(seconds)) return '—';
  const abs = Math.abs(seconds);
  if (abs < 0.001) return `${Math.round(seconds * 1e6)} µs`;
  if (abs < 0.9995) {
    const ms = seconds * 1000;
    const a = Math.abs(ms); // decimals by the rounded value: 9.999 ms is "10.0 ms", not "10.00 ms"
    return `${ms.toFixed(a < 9.995 ? 2 : a < 99.95 ? 1 : 0)} ms`;
  }
  if (abs < 60) return `${seconds.toFixed(2)} s`;
  const minutes = Math.floor(abs / 60);
  return `${minutes} min ${Math.round(abs - minutes * 60)} s`;
}

/** How long ago an epoch-seconds instant was: "4 s ago", "3 min ago", "2 h ago", "5 d ago". */
export function age(epochSeconds, now = Date.now() / 1000) {
  const d = Math.max(0, now - epochSeconds);
  if (d < 60) return `${Math.floor(d)} s ago`;
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  return `${Math.floor(d / 86400)} d ago`;
}

/** An epoch-seconds instant as a local date and time with milliseconds. */
export function timestamp(epochSeconds) {
  const date = new Date(epochSeconds * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

/** 1234567 as "1,234,567". */
export function count(n) {
  return Number(n || 0).toLocaleString('en-US');
}

/** A rate per minute: "12/min", "0.3/min", "1.2k/min". */
export function perMinute(n) {
  if (n >= 1000) return `${(n / 1000).toFixed(1)}k/min`;
  if (n >= 10) return `${Math.round(n)}/min`;
  return `${n.toFixed(n >= 1 ? 1 : 2)}/min`;
}

/** A share as "12.5 %". */
export function percent(part, total) {
  if (!total) return '0 %';
  const p = (100 * part) / total;
  return `${p >= 10 || p === 0 ? p.toFixed(0) : p.toFixed(1)} %`;
}

/**
 * The four outcomes of X-Ray statistics ({OkCount, ErrorStatistics, FaultStatistics,
 * TotalCount, TotalResponseTime}) as plain numbers.
 */
export function outcomes(stats) {
  const s = stats || {};
  const throttle = (s.ErrorStatistics && s.ErrorStatistics.ThrottleCount) || 0;
  const error = (s.ErrorStatistics && s.ErrorStatistics.OtherCount) || 0;
  const fault = (s.FaultStatistics && s.FaultStatistics.TotalCount) || 0;
  const total = s.TotalCount || 0;
  const ok = s.OkCount !== undefined ? s.OkCount : Math.max(0, total - throttle - error - fault);
  const average = total ? (s.TotalResponseTime || 0) / total : 0;
  return { ok, error, fault, throttle, total, average };
}

/** Status of a segment document or summary: 'fault', 'throttle', 'error' or 'ok'. */
export function status(item) {
  if (!item) return 'ok';
  if (item.fault || item.HasFault) return 'fault';
  if (item.throttle || item.HasThrottle) return 'throttle';
  if (item.error || item.HasError) return 'error';
  return 'ok';
}

/** A trace summary's response time in seconds (its duration when it has none), or null. */
export function responseTime(summary) {
  const t = summary.ResponseTime ?? summary.Duration;
  return typeof t === 'number' && Number.isFinite(t) ? t : null;
}

/** A JSON string for a filter expression, with quotes and backslashes escaped. */
export function quote(text) {
  return JSON.stringify(String(text));
}
