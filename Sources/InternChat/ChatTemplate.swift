// The chat templates of the ChatML family that InternKit renders natively, and recognition of a model's
// Jinja `chat_template` (GGUF `tokenizer.chat_template`, HF tokenizer_config.json) as one of them.
// InternKit does not run Jinja: a template it does not recognise is an error that names the built-in
// templates, so a prompt is never rendered in a layout the model was not trained on without the user asking.

import Foundation

/// A ChatML-family template: where BOS goes and which system prompt applies when none is given.
public struct ChatTemplate: Sendable, Equatable {
    public var name: String
    /// Starts the prompt with `<s>` (InternLM2's template writes `{{ bos_token }}` first).
    public var addsBOS: Bool
    /// Rendered as the first message when the conversation does not start with a system message.
    public var defaultSystem: String?

    public init(name: String, addsBOS: Bool, defaultSystem: String? = nil) {
        self.name = name
        self.addsBOS = addsBOS
        self.defaultSystem = defaultSystem
    }

    /// internlm2-chat-*: BOS, then ChatML with the environment role and action tokens.
    public static let internLM2 = ChatTemplate(name: "internlm2", addsBOS: true)
    /// Plain ChatML, no BOS, no default system prompt.
    public static let chatML = ChatTemplate(name: "chatml", addsBOS: false)
    /// SmolLM2-Instruct: ChatML with its default system prompt.
    public static let smolLM2 = ChatTemplate(
        name: "smollm2", addsBOS: false, defaultSystem: "You are a helpful AI assistant named SmolLM, trained by Hugging Face")

    public static let builtIn: [ChatTemplate] = [.internLM2, .chatML, .smolLM2]

    /// The built-in template called `name`.
    public static func named(_ name: String) -> ChatTemplate? { builtIn.first { $0.name == name } }

    private static let chatMLLoop =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    private static let defaultSystemPrefix =
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n"
    private static let defaultSystemSuffix =
        "<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

    /// Recognises a Jinja chat template of the ChatML family: InternLM2's (`{{ bos_token }}` + ChatML), plain
    /// ChatML, and ChatML with a default system message (SmolLM2's). Returns nil for anything else.
    public static func recognize(jinja: String) -> ChatTemplate? {
        // Templates are written with real newlines or with `\n` escapes inside the Jinja strings.
        let text = jinja.replacingOccurrences(of: "\n", with: "\\n").trimmingCharacters(in: .whitespaces)
        if text == "{{ bos_token }}" + chatMLLoop { return .internLM2 }
        if text == chatMLLoop { return .chatML }
        if text.hasPrefix(defaultSystemPrefix) && text.hasSuffix(defaultSystemSuffix) {
            let system = String(text.dropFirst(defaultSystemPrefix.count).dropLast(defaultSystemSuffix.count))
            guard !system.contains("'"), !system.contains("{") else { return nil }
            let decoded = system.replacingOccurrences(of: "\\n", with: "\n")
            return decoded == smolLM2.defaultSystem ? .smolLM2 : ChatTemplate(name: "chatml-default-system", addsBOS: false, defaultSystem: decoded)
        }
        return nil
    }
}
