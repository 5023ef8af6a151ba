// Package storetest holds one contract suite per store interface. Every
// implementation (store/memory, store/postgres, store/redis) runs the same
// suite, so they return the same errors and behave the same under
// concurrency. A host application that writes its own implementation can
// run the suite against it too.
//
// Each suite takes a factory that returns a fresh, empty store for one
// subtest.
package storetest
