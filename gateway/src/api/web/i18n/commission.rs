//! The texts of the installer's tests and records and of the roster columns
//! (`web/commission.rs`, the devices page), in Chinese and English.

use super::Lang;

/// A text of the commissioning parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum C {
    Commissioning,
    StartCommissioning,
    PutInService,
    RunSelfTest,
    PressButton,
    PressNow,
    Tests,
    Kind,
    Result,
    Requested,
    DeviceToGateway,
    GatewayToInstaller,
    Total,
    Waiting,
    IssueRecord,
    Records,
    Download,
    Print,
    Record,
    Installer,
    Issued,
    Device,
    Binding,
    Firmware,
    Signal,
    Battery,
    ConfigInForce,
    LastSelfTest,
    Online,
    Offline,
    Unknown,
    VerifyHow,
    Signature,
    NotCommissioned,
}

impl C {
    /// Chinese (simplified).
    const fn zh(self) -> &'static str {
        match self {
            Self::Commissioning => "调试与测试",
            Self::StartCommissioning => "进入调试状态",
            Self::PutInService => "投入运行",
            Self::RunSelfTest => "运行设备自检",
            Self::PressButton => "按测试按钮",
            Self::PressNow => "现在请按下设备上的测试按钮",
            Self::Tests => "测试记录",
            Self::Kind => "类型",
            Self::Result => "结果",
            Self::Requested => "发起时间",
            Self::DeviceToGateway => "设备→网关",
            Self::GatewayToInstaller => "网关→安装人员",
            Self::Total => "总计",
            Self::Waiting => "等待设备应答…",
            Self::IssueRecord => "生成调试记录",
            Self::Records => "调试记录",
            Self::Download => "下载 (JSON)",
            Self::Print => "打印",
            Self::Record => "调试记录",
            Self::Installer => "安装人员",
            Self::Issued => "签发时间",
            Self::Device => "设备",
            Self::Binding => "安装位置",
            Self::Firmware => "固件",
            Self::Signal => "信号",
            Self::Battery => "电池",
            Self::ConfigInForce => "配置(生效/目标)",
            Self::LastSelfTest => "最近自检",
            Self::Online => "在线",
            Self::Offline => "离线",
            Self::Unknown => "未知",
            Self::VerifyHow => {
                "校验：firegrid record verify 文件 --key 公钥（公钥见 /api/v1/commissioning/key）"
            }
            Self::Signature => "签名 (Ed25519)",
            Self::NotCommissioned => {
                "设备处于调试状态时才能测试；测试报警只发给安装人员，不通知网格员。"
            }
        }
    }

    /// English.
    const fn en(self) -> &'static str {
        match self {
            Self::Commissioning => "Commissioning and tests",
            Self::StartCommissioning => "Start commissioning",
            Self::PutInService => "Put in service",
            Self::RunSelfTest => "Run the self-test",
            Self::PressButton => "Test button",
            Self::PressNow => "Press the device's test button now",
            Self::Tests => "Tests",
            Self::Kind => "Kind",
            Self::Result => "Result",
            Self::Requested => "Requested",
            Self::DeviceToGateway => "device→gateway",
            Self::GatewayToInstaller => "gateway→installer",
            Self::Total => "total",
            Self::Waiting => "Waiting for the device…",
            Self::IssueRecord => "Issue the commissioning record",
            Self::Records => "Commissioning records",
            Self::Download => "Download (JSON)",
            Self::Print => "Print",
            Self::Record => "Commissioning record",
            Self::Installer => "Installer",
            Self::Issued => "Issued",
            Self::Device => "Device",
            Self::Binding => "Installed at",
            Self::Firmware => "Firmware",
            Self::Signal => "Signal",
            Self::Battery => "Battery",
            Self::ConfigInForce => "Config (in force/wanted)",
            Self::LastSelfTest => "Last self-test",
            Self::Online => "online",
            Self::Offline => "offline",
            Self::Unknown => "unknown",
            Self::VerifyHow => {
                "Verify: firegrid record verify FILE --key PUBLIC_KEY (the key: /api/v1/commissioning/key)"
            }
            Self::Signature => "Signature (Ed25519)",
            Self::NotCommissioned => {
                "Tests run while the device is commissioned; test alarms go to the installer only, not to the grid worker."
            }
        }
    }
}

impl Lang {
    /// A text of the commissioning parts.
    pub(crate) const fn c(self, m: C) -> &'static str {
        match self {
            Self::Zh => m.zh(),
            Self::En => m.en(),
        }
    }
}
