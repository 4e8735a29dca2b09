"""A lagent 0.2.4-style InternLM2 agent CLI, written against inkagent by renaming `lagent` in the imports.

It follows lagent's `examples/internlm2_agent_cli_demo.py`: the caller keeps the history as a list,
`stream_chat(history)` streams `AgentReturn`s, the output is printed by `AgentStatusCode` (the code is
shown while the model writes it), and `history.extend(agent_return.inner_steps)` closes each turn.

For tests: `--script FILE` (a JSON list of model outputs) uses a scripted model instead of loading
`--path`, and `--record FILE` saves the prompts the model received after every turn.
"""

import json
from argparse import ArgumentParser

from inkagent.actions import ActionExecutor, ArxivSearch, IPythonInterpreter
from inkagent.agents.internlm2_agent import (
    INTERPRETER_CN,
    META_CN,
    PLUGIN_CN,
    Internlm2Agent,
    Internlm2Protocol,
)
from inkagent.llms import HFTransformer
from inkagent.llms.meta_template import INTERNLM2_META as META
from inkagent.schema import AgentStatusCode


def parse_args():
    parser = ArgumentParser(description='chatbot')
    parser.add_argument('--path', type=str, default='internlm/internlm2-chat-20b', help='The path to the model')
    parser.add_argument('--script', type=str, default=None, help='A JSON list of scripted model outputs')
    parser.add_argument('--record', type=str, default=None, help='Where to save the prompts the model got')
    return parser.parse_args()


def main():
    args = parse_args()
    generation = dict(max_new_tokens=1024, top_p=0.8, top_k=None, temperature=0.1, repetition_penalty=1.0,
                      stop_words=['<|im_end|>'])
    if args.script:
        from inkagent.llms import ScriptedLLM

        with open(args.script, encoding='utf-8') as f:
            model = ScriptedLLM(json.load(f), meta_template=META, **generation)
    else:
        model = HFTransformer(path=args.path, meta_template=META, **generation)
    plugin_executor = ActionExecutor(actions=[ArxivSearch()])  # noqa: F841
    interpreter_executor = ActionExecutor(actions=[IPythonInterpreter()])

    chatbot = Internlm2Agent(
        llm=model,
        plugin_executor=None,
        interpreter_executor=interpreter_executor,
        protocol=Internlm2Protocol(
            meta_prompt=META_CN,
            interpreter_prompt=INTERPRETER_CN,
            plugin_prompt=PLUGIN_CN,
            tool=dict(
                begin='{start_token}{name}\n',
                start_token='<|action_start|>',
                name_map=dict(plugin='<|plugin|>', interpreter='<|interpreter|>'),
                belong='assistant',
                end='<|action_end|>\n',
            ),
        ),
    )

    def input_prompt():
        print('\ndouble enter to end input >>> ', end='', flush=True)
        sentinel = ''  # ends when this string is seen
        return '\n'.join(iter(input, sentinel))

    history = []
    while True:
        try:
            prompt = input_prompt()
        except UnicodeDecodeError:
            print('UnicodeDecodeError')
            continue
        if prompt == 'exit':
            interpreter_executor.close()
            exit(0)
        history.append(dict(role='user', content=prompt))
        print('\nInternLm2：', end='')
        current_length = 0
        last_status = None
        for agent_return in chatbot.stream_chat(history):
            status = agent_return.state
            if status not in [AgentStatusCode.STREAM_ING, AgentStatusCode.CODING, AgentStatusCode.PLUGIN_START]:
                continue
            if status != last_status:
                current_length = 0
                print('')
            if isinstance(agent_return.response, dict):
                action = f"\n\n {agent_return.response['name']}: \n\n"
                action_input = agent_return.response['parameters']
                if agent_return.response['name'] == 'IPythonInterpreter':
                    action_input = action_input['command']
                response = action + action_input
            else:
                response = agent_return.response
            print(response[current_length:], end='', flush=True)
            current_length = len(response)
            last_status = status
        print('')
        history.extend(agent_return.inner_steps)
        if args.record:
            with open(args.record, 'w', encoding='utf-8') as f:
                json.dump(model.prompts, f, ensure_ascii=False)


if __name__ == '__main__':
    main()
