// Package decision will hold the Decider interface that fills an ad space,
// with its request and decision types. Its adapters are decision/kevel (the
// Kevel Decision API), decision/cache (a caching decorator) and
// decision/local (the first-party engine over user-created ads).
//
// Nothing is implemented yet; the package exists so that the layout of the
// module is the one host applications will import.
package decision
