import { readdirSync, readFileSync } from 'node:fs';

/** The nice value of each thread of process `pid`, by thread id (Linux: /proc/<pid>/task/<tid>/stat, field 19). */
export function threadNice(pid: number | 'self' = 'self'): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // After "pid (comm) ": state is field 3, nice field 19.
    out.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
  }
  return out;
}
