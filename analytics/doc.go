// Package analytics will hold tracking tokens, impression, click and
// conversion events, invalid-traffic filters, durable batched ingest,
// rollups and the performance, revenue and user reports.
//
// Nothing is implemented yet; the package exists so that the layout of the
// module is the one host applications will import.
package analytics
