package twilioapi

import (
	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

// KnownTypes are Twilio's event types as the relay knows them without asking Twilio: Event Streams types
// from Twilio's documentation, the sink test event, and the types the relay gives classic callbacks. The metrics use them to bound their type label (a type outside
// the list and the routes is counted as "other"), since the relay cannot list the account's types at
// serve time without its credentials. `relay twilio types` lists the account's own catalog.
func KnownTypes() []string {
	types := []string{relay.TestEventType}
	for family, events := range eventStreamsTypes {
		for _, e := range events {
			types = append(types, "com.twilio."+family+"."+e)
		}
	}
	for kind, statuses := range classicStatuses {
		for _, st := range statuses {
			types = append(types, twilio.ClassicTypePrefix+kind+"."+st)
		}
	}
	return types
}

// eventStreamsTypes are Event Streams types from Twilio's documentation, by family
// ("com.twilio.<family>.<event>"). The list is what was seen documented, not the whole catalog: a type it
// lacks gets its own label when a route names it.
var eventStreamsTypes = map[string][]string{
	"messaging": {"message.queued", "message.sent", "message.delivered", "message.undelivered", "message.failed",
		"message.read", "inbound-message.received"},
	"voice": {"insights.call-summary.partial", "insights.call-summary.predicted-complete",
		"insights.call-summary.complete", "status-callback.call.initiated", "status-callback.call.ringing",
		"status-callback.call.answered", "status-callback.call.completed"},
	"taskrouter": {"task.created", "task.updated", "task.canceled", "task.completed", "task.deleted",
		"task.wrapup", "task.system-deleted", "reservation.created", "reservation.accepted",
		"reservation.rejected", "reservation.timeout", "reservation.canceled", "reservation.rescinded",
		"reservation.completed", "reservation.failed", "reservation.wrapup", "task-queue.created",
		"task-queue.deleted", "task-queue.entered", "task-queue.moved", "task-queue.timeout",
		"task-queue.expression.updated", "worker.created", "worker.deleted", "worker.activity.update",
		"worker.attributes.update", "worker.capacity.update", "worker.channel.availability.update",
		"workflow.entered", "workflow.target-matched", "workflow.skipped", "workflow.timeout",
		"activity.created", "activity.updated", "activity.deleted"},
	"conversations": {"conversation.added", "conversation.updated", "conversation.removed", "message.added",
		"message.updated", "message.removed", "participant.added", "participant.updated", "participant.removed",
		"user.added", "user.updated"},
	"studio":          {"flow.execution.started", "flow.execution.ended", "flow.step.ended"},
	"error-logs":      {"error.logged"},
	"accountsecurity": {"verify.message.delivered", "verify.message.failed"},
}

// classicStatuses are the statuses of classic callbacks and the Debugger's levels, by the kind the
// relay names in their type (twilio.DecodeClassic: com.twilio.classic.<kind>.<status>).
var classicStatuses = map[string][]string{
	"messaging.message": {"accepted", "scheduled", "queued", "sending", "sent", "delivered", "undelivered",
		"failed", "receiving", "received", "read", "canceled", "partially_delivered"},
	"voice.call":     {"queued", "initiated", "ringing", "in-progress", "answered", "completed", "busy", "no-answer", "canceled", "failed"},
	"debugger.alert": {"error", "warning"},
}
