// A log line as data: what the worker edge hands the log (a worker's output
// line, at its syslog priority, with the fields that attribute it) without
// knowing how the log writes it.
export type Fields = Record<string, string | number | boolean | null | undefined>;

export interface OutputEntry {
  priority: number;
  message: string;
  fields: Fields;
}
