//! The ES2+ wire format (SGP.22 §5.3, §6.5): JSON bodies with camel-cased fields, a `header`
//! inside every request and answer, and an answer that is HTTP 200 even when the function
//! failed (the outcome is in `header.functionExecutionStatus`).
//!
//! | we send / read | how |
//! |---|---|
//! | ICCID | 18 to 20 digits; a 19-digit one padded with a trailing `F` (before v2.2) is read as the 19 digits; sent unpadded unless the client is told to pad |
//! | `timestamp` | `YYYY-MM-DDThh:mm:ssZ`: UTC (`Z`), years 0000 to 9999; fractions of a second are read |
//! | `status` | `Executed-Success`, `Executed-WithWarning`, `Failed`, `Expired`; another word is kept as it came |
//! | optional fields | left out when absent, never `null` |

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `X-Admin-Protocol` header of every ES2+ request.
pub const ADMIN_PROTOCOL: &str = "gsma/rsp/v2.2.0";

/// The ES2+ functions: four the operator calls, one the SM-DP+ calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// Reserve a profile (by type or ICCID).
    DownloadOrder,
    /// Link it to an EID or a matching ID, and release it for download.
    ConfirmOrder,
    /// Give a reserved profile back (`Available`) or retire it (`Unavailable`).
    CancelOrder,
    /// Release a confirmed profile for download.
    ReleaseProfile,
    /// The SM-DP+ tells the operator how a download went (operator's side).
    HandleDownloadProgressInfo,
}

impl Function {
    /// Every function.
    pub const ALL: [Function; 5] = [
        Function::DownloadOrder,
        Function::ConfirmOrder,
        Function::CancelOrder,
        Function::ReleaseProfile,
        Function::HandleDownloadProgressInfo,
    ];

    /// The function's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Function::DownloadOrder => "downloadOrder",
            Function::ConfirmOrder => "confirmOrder",
            Function::CancelOrder => "cancelOrder",
            Function::ReleaseProfile => "releaseProfile",
            Function::HandleDownloadProgressInfo => "handleDownloadProgressInfo",
        }
    }

    /// The HTTP path: `/gsma/rsp2/es2plus/<name>`.
    pub fn path(self) -> String {
        format!("/gsma/rsp2/es2plus/{}", self.name())
    }

    /// The function of a path's last segment, if it is one.
    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// An ICCID as ES2+ carries it: 18 to 20 digits, a 19-digit one possibly padded with `F`.
/// Kept without the padding, so two spellings of one ICCID compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Iccid(String);

impl Iccid {
    /// Reads an ICCID; `None` unless it is 18 to 20 digits (or 19 digits and an `F`).
    pub fn parse(text: &str) -> Option<Iccid> {
        let digits = match text.strip_suffix(['F', 'f']) {
            Some(rest) if rest.len() == 19 => rest,
            _ => text,
        };
        ((18..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Iccid(digits.to_owned()))
    }

    /// The digits, unpadded.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form for SM-DP+s before v2.2: a 19-digit ICCID padded to 20 with `F`.
    pub fn padded(&self) -> String {
        if self.0.len() == 19 {
            format!("{}F", self.0)
        } else {
            self.0.clone()
        }
    }
}

impl std::fmt::Display for Iccid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Iccid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Iccid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Iccid, D::Error> {
        let text = String::deserialize(deserializer)?;
        Iccid::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("`{text}` is not an ICCID (18 to 20 digits)"))
        })
    }
}

/// The `header` of a request: who calls, and the call's identifier (kept by a retry, so the
/// SM-DP+ answers a repeated call with its first answer instead of acting twice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestHeader {
    /// The operator's identifier, agreed with the SM-DP+.
    pub function_requester_identifier: String,
    /// Unique per call; the same on each retry of the call.
    pub function_call_identifier: String,
}

/// How a function went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionStatus {
    /// `Executed-Success`.
    Success,
    /// `Executed-WithWarning`: done, with a note in `statusCodeData`.
    WithWarning,
    /// `Failed`: not done; `statusCodeData` says why.
    Failed,
    /// `Expired`: the SM-DP+ gave up on it.
    Expired,
    /// A word this version does not know, kept as it came.
    Other(String),
}

impl ExecutionStatus {
    /// The word on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ExecutionStatus::Success => "Executed-Success",
            ExecutionStatus::WithWarning => "Executed-WithWarning",
            ExecutionStatus::Failed => "Failed",
            ExecutionStatus::Expired => "Expired",
            ExecutionStatus::Other(word) => word,
        }
    }

    /// Whether the function was carried out (with or without a warning).
    pub fn executed(&self) -> bool {
        matches!(
            self,
            ExecutionStatus::Success | ExecutionStatus::WithWarning
        )
    }
}

impl Serialize for ExecutionStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ExecutionStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ExecutionStatus, D::Error> {
        let word = String::deserialize(deserializer)?;
        Ok(match word.as_str() {
            "Executed-Success" => ExecutionStatus::Success,
            "Executed-WithWarning" => ExecutionStatus::WithWarning,
            "Failed" => ExecutionStatus::Failed,
            "Expired" => ExecutionStatus::Expired,
            _ => ExecutionStatus::Other(word),
        })
    }
}

/// Why a function failed or warned: what the problem concerns (`subjectCode`, e.g. `8.2.1`
/// the profile's ICCID) and what it is (`reasonCode`, e.g. `3.9` unknown).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCodeData {
    /// What the problem concerns.
    pub subject_code: String,
    /// What the problem is.
    pub reason_code: String,
    /// The object at fault (an ICCID, an EID), where given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_identifier: Option<String>,
    /// The SM-DP+'s words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl StatusCodeData {
    /// The codes and what they mean, for people: `8.2.5/3.7 (profile type: unavailable)`.
    pub fn describe(&self) -> String {
        let subject = match self.subject_code.as_str() {
            "8.1" | "8.1.1" => "EID",
            "8.2" => "profile",
            "8.2.1" => "profile ICCID",
            "8.2.5" => "profile type",
            "8.2.6" => "matching ID",
            "8.2.7" => "confirmation code",
            "8.9" | "8.9.1" => "SM-DP+ address",
            "1.2" => "function requester",
            "1.6" => "function",
            _ => "a subject this version does not know",
        };
        let reason = match self.reason_code.as_str() {
            "1.1" => "not allowed",
            "1.2" => "not authorised",
            "2.1" => "invalid",
            "2.2" => "mandatory element missing",
            "3.1" => "unknown",
            "3.3" => "already in use",
            "3.5" => "refused",
            "3.7" => "unavailable",
            "3.8" => "refused",
            "3.9" => "unknown",
            "3.10" => "invalid association",
            "4.2" => "execution error",
            "5.1" => "inaccessible",
            "6.1" => "expired",
            "6.4" => "maximum number of attempts exceeded",
            _ => "a reason this version does not know",
        };
        let mut text = format!(
            "{}/{} ({subject}: {reason})",
            self.subject_code, self.reason_code
        );
        if let Some(message) = self.message.as_deref().filter(|m| !m.trim().is_empty()) {
            text.push_str(": ");
            text.push_str(message.trim());
        }
        text
    }
}

/// `functionExecutionStatus`: the outcome, and its codes for a failure or a warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionExecutionStatus {
    /// The outcome.
    pub status: ExecutionStatus,
    /// Why, with a failure or a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code_data: Option<StatusCodeData>,
}

impl FunctionExecutionStatus {
    /// `Executed-Success`.
    pub fn success() -> FunctionExecutionStatus {
        FunctionExecutionStatus {
            status: ExecutionStatus::Success,
            status_code_data: None,
        }
    }

    /// `Failed` with `subject`/`reason` and a message.
    pub fn failed(subject: &str, reason: &str, message: &str) -> FunctionExecutionStatus {
        FunctionExecutionStatus {
            status: ExecutionStatus::Failed,
            status_code_data: Some(StatusCodeData {
                subject_code: subject.to_owned(),
                reason_code: reason.to_owned(),
                subject_identifier: None,
                message: Some(message.to_owned()),
            }),
        }
    }
}

/// The `header` of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseHeader {
    /// The outcome.
    pub function_execution_status: FunctionExecutionStatus,
}

/// `downloadOrder`: reserve a profile of a type, or a given ICCID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadOrderRequest {
    /// Who calls, and the call's identifier.
    pub header: RequestHeader,
    /// The eUICC, when known now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    /// This profile (or one of `profile_type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iccid: Option<Iccid>,
    /// Any available profile of this type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_type: Option<String>,
}

/// The answer to `downloadOrder`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadOrderResponse {
    /// The outcome.
    pub header: ResponseHeader,
    /// The reserved profile (with success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iccid: Option<Iccid>,
}

/// `confirmOrder`: link the reserved profile and, with `release_flag`, release it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmOrderRequest {
    /// Who calls, and the call's identifier.
    pub header: RequestHeader,
    /// The profile.
    pub iccid: Iccid,
    /// The eUICC, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    /// A matching ID of our own; the SM-DP+ makes one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching_id: Option<String>,
    /// A code the user must type to download, hashed as SGP.22 says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_code: Option<String>,
    /// An SM-DS to register the event with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smds_address: Option<String>,
    /// Release for download now.
    pub release_flag: bool,
}

/// The answer to `confirmOrder`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmOrderResponse {
    /// The outcome.
    pub header: ResponseHeader,
    /// The eUICC, when linked to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    /// The matching ID of the activation code (with success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching_id: Option<String>,
    /// The address for the activation code, when the SM-DP+ names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smdp_address: Option<String>,
}

/// What becomes of a cancelled order's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinalProfileStatus {
    /// Back in stock.
    Available,
    /// Retired.
    Unavailable,
}

/// `cancelOrder`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelOrderRequest {
    /// Who calls, and the call's identifier.
    pub header: RequestHeader,
    /// The profile.
    pub iccid: Iccid,
    /// The eUICC, when linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    /// The order's matching ID, when confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching_id: Option<String>,
    /// Back in stock or retired.
    pub final_profile_status_indicator: FinalProfileStatus,
}

/// `releaseProfile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseProfileRequest {
    /// Who calls, and the call's identifier.
    pub header: RequestHeader,
    /// The profile.
    pub iccid: Iccid,
}

/// An answer that is its header alone (`cancelOrder`, `releaseProfile`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderOnlyResponse {
    /// The outcome.
    pub header: ResponseHeader,
}

/// `handleDownloadProgressInfo`: the SM-DP+ tells the operator what happened at a point of a
/// download. Answered with HTTP 204.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadProgressInfo {
    /// Who calls (the SM-DP+), and the call's identifier.
    pub header: RequestHeader,
    /// The eUICC, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    /// The profile.
    pub iccid: Iccid,
    /// Its type.
    pub profile_type: String,
    /// When it happened.
    #[serde(with = "es2_time")]
    pub timestamp: DateTime<Utc>,
    /// Where in the download (see [`NotificationPoint`]).
    pub notification_point_id: u32,
    /// How it went there.
    pub notification_point_status: FunctionExecutionStatus,
    /// More, base64, for some points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_data: Option<String>,
}

/// The notification points of SGP.22 (others are forwarded from the eUICC and differ between
/// SM-DP+ products: they are kept by number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationPoint {
    /// 1: eligibility and retry-limit check.
    Eligibility,
    /// 2: confirmation failure (wrong code, too many attempts).
    ConfirmationFailure,
    /// 3: the bound profile package was downloaded.
    Download,
    /// 4: the bound profile package was installed (success: the profile is on the eUICC).
    Installation,
    /// Another point, by its number.
    Other(u32),
}

impl NotificationPoint {
    /// The point of a `notificationPointId`.
    pub fn from_id(id: u32) -> NotificationPoint {
        match id {
            1 => NotificationPoint::Eligibility,
            2 => NotificationPoint::ConfirmationFailure,
            3 => NotificationPoint::Download,
            4 => NotificationPoint::Installation,
            other => NotificationPoint::Other(other),
        }
    }

    /// Its `notificationPointId`.
    pub fn id(self) -> u32 {
        match self {
            NotificationPoint::Eligibility => 1,
            NotificationPoint::ConfirmationFailure => 2,
            NotificationPoint::Download => 3,
            NotificationPoint::Installation => 4,
            NotificationPoint::Other(id) => id,
        }
    }
}

/// `timestamp` as ES2+ writes it: `YYYY-MM-DDThh:mm:ssZ`.
mod es2_time {
    use super::*;

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Secs, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        use chrono::Datelike as _;
        let text = String::deserialize(deserializer)?;
        let refused = || {
            serde::de::Error::custom(format!("`{text}` is not a UTC time (YYYY-MM-DDThh:mm:ssZ)"))
        };
        if !text.ends_with(['Z', 'z']) {
            return Err(refused());
        }
        DateTime::parse_from_rfc3339(&text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| (0..=9999).contains(&t.year()))
            .ok_or_else(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header() -> RequestHeader {
        RequestHeader {
            function_requester_identifier: "oytel-operator".into(),
            function_call_identifier: "call-1".into(),
        }
    }

    #[test]
    fn an_iccid_is_read_padded_or_not_and_compared_without_the_padding() {
        let plain = Iccid::parse("8944500102198304826").unwrap();
        let padded = Iccid::parse("8944500102198304826F").unwrap();
        assert_eq!(plain, padded);
        assert_eq!(padded.as_str(), "8944500102198304826");
        assert_eq!(plain.padded(), "8944500102198304826F");
        assert_eq!(
            Iccid::parse("89445001021983048267").unwrap().padded().len(),
            20
        );
        for bad in [
            "",
            "89445001021983048",
            "894450010219830482F",
            "8944500102198304826FF",
            "89445001021983048x6",
            "894450010219830482612",
        ] {
            assert_eq!(Iccid::parse(bad), None, "{bad}");
        }
        assert!(
            Iccid::parse("894450010219830482").is_some(),
            "18 digits are an ICCID"
        );
        assert!(serde_json::from_value::<Iccid>(json!("12ab")).is_err());
    }

    #[test]
    fn requests_have_the_field_names_of_sgp22_and_leave_absent_fields_out() {
        let download = DownloadOrderRequest {
            header: header(),
            eid: None,
            iccid: None,
            profile_type: Some("uk-5g".into()),
        };
        assert_eq!(
            serde_json::to_value(&download).unwrap(),
            json!({"header": {"functionRequesterIdentifier": "oytel-operator",
                              "functionCallIdentifier": "call-1"},
                   "profileType": "uk-5g"})
        );
        let confirm = ConfirmOrderRequest {
            header: header(),
            iccid: Iccid::parse("8944500102198304826F").unwrap(),
            eid: None,
            matching_id: None,
            confirmation_code: None,
            smds_address: None,
            release_flag: true,
        };
        assert_eq!(
            serde_json::to_value(&confirm).unwrap(),
            json!({"header": {"functionRequesterIdentifier": "oytel-operator",
                              "functionCallIdentifier": "call-1"},
                   "iccid": "8944500102198304826", "releaseFlag": true})
        );
        let cancel = CancelOrderRequest {
            header: header(),
            iccid: Iccid::parse("8944500102198304826").unwrap(),
            eid: None,
            matching_id: Some("ABCD-1234".into()),
            final_profile_status_indicator: FinalProfileStatus::Available,
        };
        assert_eq!(
            serde_json::to_value(&cancel).unwrap()["finalProfileStatusIndicator"],
            "Available"
        );
        assert_eq!(
            Function::ReleaseProfile.path(),
            "/gsma/rsp2/es2plus/releaseProfile"
        );
        assert_eq!(
            Function::from_name("cancelOrder"),
            Some(Function::CancelOrder)
        );
    }

    #[test]
    fn answers_are_read_with_their_status_and_codes_also_when_they_failed() {
        let success: ConfirmOrderResponse = serde_json::from_value(json!({
            "header": {"functionExecutionStatus": {"status": "Executed-Success"}},
            "eid": "89049032123451234512345678901235",
            "matchingId": "0123-ABCD-KV56-DE78",
            "smdpAddress": "smdp.example.com"
        }))
        .unwrap();
        assert!(success.header.function_execution_status.status.executed());
        assert_eq!(success.matching_id.as_deref(), Some("0123-ABCD-KV56-DE78"));

        let failed: DownloadOrderResponse = serde_json::from_value(json!({
            "header": {"functionExecutionStatus": {"status": "Failed",
                "statusCodeData": {"subjectCode": "8.2.5", "reasonCode": "3.7",
                                   "message": "no profile of this type is available"}}}
        }))
        .unwrap();
        let status = failed.header.function_execution_status;
        assert_eq!(status.status, ExecutionStatus::Failed);
        assert_eq!(
            status.status_code_data.unwrap().describe(),
            "8.2.5/3.7 (profile type: unavailable): no profile of this type is available"
        );

        let unknown: HeaderOnlyResponse = serde_json::from_value(json!({
            "header": {"functionExecutionStatus": {"status": "Executed-Later"}}
        }))
        .unwrap();
        assert_eq!(
            unknown.header.function_execution_status.status,
            ExecutionStatus::Other("Executed-Later".into())
        );
        assert!(!unknown.header.function_execution_status.status.executed());
    }

    #[test]
    fn a_download_progress_notification_reads_as_sgp22_writes_it() {
        let text = json!({
            "header": {"functionRequesterIdentifier": "smdp.example.com",
                       "functionCallIdentifier": "n-77"},
            "eid": "89049032123451234512345678901235",
            "iccid": "8944500102198304826F",
            "profileType": "uk-5g",
            "timestamp": "2026-11-30T10:15:00Z",
            "notificationPointId": 4,
            "notificationPointStatus": {"status": "Executed-Success"}
        });
        let info: DownloadProgressInfo = serde_json::from_value(text.clone()).unwrap();
        assert_eq!(
            NotificationPoint::from_id(info.notification_point_id),
            NotificationPoint::Installation
        );
        assert_eq!(info.iccid.as_str(), "8944500102198304826");
        let written = serde_json::to_value(&info).unwrap();
        assert_eq!(written["timestamp"], "2026-11-30T10:15:00Z");
        assert_eq!(written["notificationPointId"], 4);
        assert_eq!(NotificationPoint::from_id(9), NotificationPoint::Other(9));
        // Only UTC, as written; an offset that moves the time out of four-digit years is
        // refused (a review found it: written back, it would not read).
        for refused in [
            "2026-11-30T10:15:00+01:00",
            "0000-01-01T00:00:00+01:00",
            "2026-11-30",
        ] {
            let mut other = text.clone();
            other["timestamp"] = json!(refused);
            assert!(
                serde_json::from_value::<DownloadProgressInfo>(other).is_err(),
                "{refused}"
            );
        }
    }
}
