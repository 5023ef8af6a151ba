// Package memory implements every adshare store interface in process memory.
//
// It is the embedded default of the example server and the fast test double
// for host applications. It keeps the same promises as store/postgres (the
// contract suites in store/storetest run against both), including the errors
// returned and the behaviour under concurrent writers, but holds nothing
// across restarts and nothing across processes.
package memory
