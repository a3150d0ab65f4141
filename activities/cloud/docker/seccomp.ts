/**
 * The seccomp profile of a machine container, written as a deny list: the calls Docker's default profile refuses
 * even a container holding SYS_ADMIN (which gets mount, unshare, setns, namespaced clone and bpf from it), less
 * `keyctl`, `add_key` and `request_key`, which Docker's default refuses and the engine inside a machine needs (runc
 * gives each of its containers a session keyring). What stays refused is what no machine may do to the kernel it
 * shares with the host: load modules, reboot or kexec it, set its clock, swap, or reach into other processes' memory.
 */
const refused = [
  // modules and boot
  'create_module',
  'init_module',
  'finit_module',
  'delete_module',
  'get_kernel_syms',
  'query_module',
  'kexec_load',
  'kexec_file_load',
  'reboot',
  // the clock
  'clock_adjtime',
  'clock_settime',
  'settimeofday',
  'stime',
  // swap, accounting, raw I/O, obsolete and kernel-internal calls
  'swapon',
  'swapoff',
  'acct',
  'iopl',
  'ioperm',
  'nfsservctl',
  'uselib',
  'ustat',
  'sysfs',
  '_sysctl',
  'vm86',
  'vm86old',
  // other processes' memory, file handles outside the container, kernel events
  'process_vm_readv',
  'process_vm_writev',
  'kcmp',
  'open_by_handle_at',
  'name_to_handle_at',
  'perf_event_open',
  'userfaultfd',
  // NUMA placement of the host's memory
  'mbind',
  'set_mempolicy',
  'get_mempolicy',
  'move_pages',
];

/** For the engine's `seccomp=<profile JSON>` security option (runc skips names this architecture lacks). */
export const machineSeccompProfile = JSON.stringify({
  defaultAction: 'SCMP_ACT_ALLOW',
  syscalls: [{ names: refused, action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
});
