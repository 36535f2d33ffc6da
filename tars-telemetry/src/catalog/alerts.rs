//! What the platform's alerts and contract say of the catalog: renamed families and the
//! quantile thresholds, each a bucket bound.

/// Names in the platform's contract that this catalog emits under another name.
pub const RENAMED: &[(&str, &str)] = &[(
    "tars_vector_store_documents_total",
    "tars_vector_store_documents",
)];

/// One alert threshold on a histogram quantile: the contract's rule, the family, the value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertThreshold {
    /// The alert.
    pub alert: &'static str,
    /// The histogram family its expression reads.
    pub family: &'static str,
    /// The quantile it compares.
    pub quantile: f64,
    /// The threshold, a bucket bound.
    pub seconds: f64,
}

/// Every quantile threshold the platform's alerts compare against; each must be a bucket bound.
pub const ALERT_THRESHOLDS: &[AlertThreshold] = &[
    AlertThreshold {
        alert: "HighRAGQueryLatency",
        family: "tars_rag_query_duration_seconds",
        quantile: 0.95,
        seconds: 0.25,
    },
    AlertThreshold {
        alert: "VeryHighRAGQueryLatency",
        family: "tars_rag_query_duration_seconds",
        quantile: 0.95,
        seconds: 1.0,
    },
    AlertThreshold {
        alert: "HighLLMInferenceLatency",
        family: "tars_llm_inference_duration_seconds",
        quantile: 0.95,
        seconds: 2.0,
    },
    AlertThreshold {
        alert: "HighEmbeddingLatency",
        family: "tars_embedding_duration_seconds",
        quantile: 0.95,
        seconds: 0.5,
    },
    AlertThreshold {
        alert: "HighDatabaseQueryLatency",
        family: "tars_db_query_duration_seconds",
        quantile: 0.95,
        seconds: 0.1,
    },
    AlertThreshold {
        alert: "HighVectorSearchLatency",
        family: "tars_vector_search_duration_seconds",
        quantile: 0.95,
        seconds: 0.5,
    },
    AlertThreshold {
        alert: "SlowDocumentProcessing",
        family: "tars_document_processing_duration_seconds",
        quantile: 0.95,
        seconds: 10.0,
    },
];
