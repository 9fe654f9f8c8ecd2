//! Strict reading of the enums in requests. [`EventType`] and [`EsimStatus`] read a name
//! they do not know as `Unknown`, so that a client keeps working when a newer server sends a
//! new event or state; in a request, an unknown name is refused as before, with serde's
//! message naming the name and the known ones.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::{EsimStatus, EventType};

fn event_type<E: serde::de::Error>(name: &str) -> Result<EventType, E> {
    EventType::parse(name).ok_or_else(|| E::unknown_variant(name, &EventType::NAMES))
}

/// A list of event types, each one known.
pub(crate) fn event_types<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EventType>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|name| event_type(name))
        .collect()
}

/// An optional list of event types, each one known.
pub(crate) fn some_event_types<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<EventType>>, D::Error> {
    Option::<Vec<String>>::deserialize(d)?
        .map(|names| names.iter().map(|name| event_type(name)).collect())
        .transpose()
}

/// An optional eSIM state, known.
pub(crate) fn some_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<EsimStatus>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|name| {
            name.parse::<EsimStatus>()
                .map_err(|_| D::Error::unknown_variant(&name, &EsimStatus::NAMES))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use crate::{CreateWebhookEndpoint, EsimStatus, EventType, ListEsimsQuery};

    #[test]
    fn an_answer_with_a_newer_name_is_read_as_unknown() {
        let status: EsimStatus = serde_json::from_str("\"hibernating\"").unwrap();
        assert_eq!(status, EsimStatus::Unknown);
        let event: EventType = serde_json::from_str("\"esim.teleported\"").unwrap();
        assert_eq!(event, EventType::Unknown);
        let known: EventType = serde_json::from_str("\"esim.activated\"").unwrap();
        assert_eq!(known, EventType::EsimActivated);
    }

    #[test]
    fn a_request_with_an_unknown_name_is_refused_naming_it() {
        let err = serde_json::from_str::<CreateWebhookEndpoint>(
            r#"{"url": "https://example.com/x", "events": ["esim.teleported"]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("unknown variant `esim.teleported`, expected one of `esim.provisioned`"),
            "{err}"
        );
        let err =
            serde_json::from_value::<ListEsimsQuery>(serde_json::json!({"status": "hibernating"}))
                .unwrap_err()
                .to_string();
        assert!(err.contains("unknown variant `hibernating`"), "{err}");
        let ok: ListEsimsQuery =
            serde_json::from_value(serde_json::json!({"status": "active"})).unwrap();
        assert_eq!(ok.status, Some(EsimStatus::Active));
    }

    #[test]
    fn unknown_is_never_sent() {
        assert!(serde_json::to_string(&EsimStatus::Unknown).is_err());
        assert!(serde_json::to_string(&EventType::Unknown).is_err());
    }
}
