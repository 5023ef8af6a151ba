// Package realtime is adshare's realtime channel without its socket: the
// versioned JSON protocol, the Broker that carries events between
// instances (with a bounded, resumable history per topic), the Hub that
// fans events out to the sessions of one instance, and the producers that
// turn ad-space changes, live analytics figures and billing alerts into
// events.
//
// transport serves the channel over a WebSocket (GET /ws); store/memory
// and store/redis implement Broker; realtimetest holds the contract suite
// every Broker passes.
//
// # Topics
//
// Every event belongs to a topic, and every topic is a stream with its own
// sequence (1, 2, 3, … without gaps) and epoch (a random string that
// changes when the stream's history is lost):
//
//	space:<owner id>      ad.updated, metrics.live for an owner's ad space
//	ads:<advertiser id>   ad.updated for an advertiser's content
//	user:<user id>        system.alert for one user (payout failed, …)
//	alerts                system.alert broadcast by an administrator
//
// Owners may subscribe to their space, advertisers to their ads, everyone
// to their own user topic and to alerts; administrators and moderators to
// any space or ads topic (the permissions of the REST routes).
// metrics.live events are coalesced (at most one a second a connection)
// and are not kept in history: they carry no sequence.
package realtime
