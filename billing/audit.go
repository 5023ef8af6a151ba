package billing

// Audit actions of billing.
const (
	AuditTopUpCreated    = "billing.topup.created"
	AuditTopUpConfirmed  = "billing.topup.confirmed"
	AuditPayoutRequested = "billing.payout.requested"
	AuditPayoutRefused   = "billing.payout.refused"
	AuditPayoutRecorded  = "billing.payout.recorded"
	AuditHoldPlaced      = "billing.hold.placed"
	AuditHoldReleased    = "billing.hold.released"
	AuditPayeeCreated    = "billing.payee.created"
)
